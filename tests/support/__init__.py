"""Shared test support, one module per concern: ``commands`` (subprocesses, waiting, servers' ports and
process groups), ``corpus`` (synthetic reviews and archives), ``params``, ``projects`` (throw-away DVC
projects), ``tracking`` (MLflow servers and runs) and ``references`` (implementations the library is checked
against). Import as ``from support.corpus import make_archive`` (pytest puts ``tests/`` on ``sys.path``);
``conftest.py`` holds only fixtures.
"""
