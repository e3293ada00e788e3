import pytest


@pytest.fixture(scope="session")
def native():
    """The Swift core, configured; the test is skipped (not passed) when it did not load."""
    import swiftlaunch
    from swiftlaunch import _loader, _runtime

    if not swiftlaunch.native_available():
        pytest.skip(f"Swift core not loaded: {swiftlaunch.native_error()}")
    _runtime.ensure_configured()
    return _loader.native
