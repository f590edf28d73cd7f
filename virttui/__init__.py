"""virttui: a keyboard-driven terminal console for libvirt hosts."""

__version__ = "0.1.0"
