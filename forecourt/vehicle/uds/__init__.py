"""ISO 14229-1:2020 server side: negative responses, sessions, security access, authentication."""
