"""Pure array functions: no paths, no configuration objects, no printing."""
