"""The exceptions khabar raises. The native module raises them by name, with the library's message."""


class KhabarError(Exception):
    """Base of every error that comes from the khabar library."""


class KhabarOSError(KhabarError, OSError):
    """A file or a model bundle could not be read or written: missing, damaged, not a bundle,
    an unsupported version, no permission."""


class KhabarValueError(KhabarError, ValueError):
    """Settings out of range or that cannot work together, or data that cannot train a model
    (for example a single label)."""
