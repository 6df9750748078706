"""One Powertools Router per resource: channels, sessions, messages, agents."""
