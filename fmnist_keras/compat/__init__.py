"""Every private or undocumented API of another library that fmnist_keras uses, fenced in.

One module per library. Each names the version it was checked on, and tests/compat/ fails
with a clear message when an upgrade moves or changes one of them: no silent fallbacks.
"""
