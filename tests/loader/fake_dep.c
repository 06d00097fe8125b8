/* A vendor runtime library stand-in that the test deletes from the search path. */
int fake_vendor_runtime_version(void) {
    return 1;
}
