"""Judging a foundation model: bias, fairness, privacy, explainability and security, each measured
against ground truth that TinyWorld plants (a gender-occupation skew of chosen strength, secrets
inserted a chosen number of times, a trigger word in a chosen share of the training data).

Modules: :mod:`labkit.audit.bias`, :mod:`labkit.audit.privacy`, :mod:`labkit.audit.fairness`,
:mod:`labkit.audit.explain`, :mod:`labkit.audit.security`,
:mod:`labkit.audit.injection`; :mod:`labkit.audit.run` runs them all (``labkit audit``).
"""

AUDITS = ("bias", "privacy", "fairness", "explain", "poisoning", "typos", "injection")  # what `labkit audit` runs


def check_audits(audits) -> tuple[str, ...]:
    """``audits`` as a tuple; ValueError naming any that is not one of AUDITS (light: the CLI checks first)."""
    if unknown := [a for a in audits if a not in AUDITS]:
        raise ValueError(f"unknown audits {unknown}; choose among {list(AUDITS)}")
    return tuple(audits)
