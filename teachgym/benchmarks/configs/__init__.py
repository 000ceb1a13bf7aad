"""Suite config files shipped with teachgym (``teachgym bench SUITE --config NAME``)."""
