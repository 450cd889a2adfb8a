//! Workspace-wide tests live in `tests/`: the crates assembled together, and the rules that
//! every crate of the workspace follows.
