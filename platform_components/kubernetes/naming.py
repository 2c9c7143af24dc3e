"""Names, labels and derived credentials: pure functions, tested without Pulumi."""

from __future__ import annotations

import base64
import hashlib
import hmac

MAX_NAME_LENGTH = 63
PART_OF = "mlops-platform"


def object_name(*parts: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """Join parts with '-' into a Kubernetes name; too long names keep a stable hash suffix.

    The same inputs always give the same name, so renders are deterministic and Pulumi URNs stable.
    """
    name = "-".join(part for part in parts if part)
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: max_length - 9].rstrip('-')}-{digest}"


def keyed_name(base: str, *inputs: str) -> str:
    """``base-<8 hex>``: a name that changes exactly when ``inputs`` change.

    For run-once Jobs: without ``ttlSecondsAfterFinished`` (the API server would delete the Job and every
    later ``pulumi up`` would recreate it), a changed input gives a new name, so Pulumi replaces the Job by
    creating the new one before deleting the old (a Job's pod template is immutable).
    """
    digest = hashlib.sha256("\0".join(inputs).encode()).hexdigest()[:8]
    return object_name(base, digest)


def labels(component: str, instance: str) -> dict[str, str]:
    """Recommended labels (app.kubernetes.io/*) for one workload; the first two also select its pods."""
    return {
        "app.kubernetes.io/name": component,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def selector(component: str, instance: str) -> dict[str, str]:
    """The immutable subset of ``labels`` used in selectors."""
    return {"app.kubernetes.io/name": component, "app.kubernetes.io/instance": instance}


def derive_credential(seed: str, purpose: str, *, length: int = 32) -> str:
    """A credential derived from the stack's secret seed: HMAC-SHA256(seed, purpose), URL-safe base64.

    Why not random: pulumi-random is not installed and a random value in the program would change on every
    run. A derived value is stable across runs, never written anywhere but a Secret, and rotated by changing
    the seed (or by setting the credential's own secret config key).
    """
    digest = hmac.new(seed.encode(), purpose.encode(), hashlib.sha256).digest()
    text = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    return text[:length]
