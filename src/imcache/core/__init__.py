"""Pure logic: returns values, raises ImcacheError subclasses, never prints."""
