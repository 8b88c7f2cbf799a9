"""Pure dispatch logic shared by ``serve``, ``probe`` and the JavaScript dispatcher's cases."""
