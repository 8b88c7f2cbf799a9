"""The dispatch conformance corpus shared by the JavaScript dispatcher and ``code24ctl serve``."""
