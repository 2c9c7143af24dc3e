"""One round of the loop, the same on both targets: window -> check -> decide -> retrain -> gate -> roll out
-> record (see ``round.py``). Side effects sit behind two small interfaces (``interfaces.py``): a
``Retrainer`` (``kfp.local`` locally, the KFP API in the cluster) and a ``Deployer`` (our MLServer locally,
the Seldon ``Model`` in the cluster).
"""
