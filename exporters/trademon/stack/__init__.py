"""The stack as a whole: native runs, the HA layout, the binaries, demo time, the guided tour."""
