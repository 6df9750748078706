"""The GraphQL API of the chat-sessions guide: schema, resolvers, guards, APQ and error mapping."""
