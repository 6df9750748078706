"""The domain rules, one module per area (containers, sessions, messages, search, starter sessions, agents) on a
shared base (rules.base): chatkeep.service composes them into ChatService, the one service both APIs call."""
