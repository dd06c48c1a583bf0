"""A corpus as ids for training: encoding in chunks into a cache, the UTF-8 scan, mapped ids and
the TBPTT batch layout (the torch layer)."""
