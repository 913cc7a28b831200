"""What a job's process sets up around the science: where it finds its programs and modules
(:mod:`rcpb.process.jobenv`) and which GPU it takes (:mod:`rcpb.process.gpu_slot`)."""
