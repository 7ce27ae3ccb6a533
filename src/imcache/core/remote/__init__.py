"""The remote tier: an S3 bucket shared by a lab or a CI fleet, behind the local cache.

settings.py reads IMCACHE_REMOTE and friends; client.py is the one module that imports obstore;
fetch.py turns a remote action record into a local entry, push.py the other way; flow.py is what
a run calls (a remote failure there is a warning and a counter, never a failed run).
"""
