"""Station loyalty agent."""


def _version() -> str:
    """The build's version, from git (setuptools-scm writes ``_version.py`` when it builds).

    A tree that was never built falls back to the installed metadata, then to a visibly
    unknown version, so a station never reports a made-up one.
    """
    try:
        from agent._version import version

        return str(version)
    except ImportError:
        pass
    from importlib.metadata import PackageNotFoundError, version as installed_version

    try:
        return installed_version("loyalty-agent")
    except PackageNotFoundError:
        return "0+unknown"


__version__ = _version()
