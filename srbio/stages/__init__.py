"""One function per workflow stage: paths and a typed config section in, files out."""
