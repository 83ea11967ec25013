"""HTTP plumbing the services share (problem documents, serving an app in a thread)."""
