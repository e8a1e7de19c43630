"""Judging a foundation model: bias, fairness, privacy, explainability and security, each measured
against ground truth that TinyWorld plants (a gender-occupation skew of chosen strength, secrets
inserted a chosen number of times, a trigger word in a chosen share of the training data).

Modules: :mod:`labkit.audit.bias`, :mod:`labkit.audit.privacy`, :mod:`labkit.audit.fairness`,
:mod:`labkit.audit.explain`, :mod:`labkit.audit.security`,
:mod:`labkit.audit.injection`; :mod:`labkit.audit.run` runs them all (``labkit audit``).
"""
