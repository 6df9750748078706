// Live updates on Apollo Client 4 with GraphQLWsLink + graphql-ws, against `chatkeep dev` (docs/live-updates.md).
//
// The client is set up as an app would: a split link sends subscriptions over the WebSocket (graphql-ws, token in
// connectionParams) and everything else over HTTP. It subscribes to a session's events, prints
// {"subscribed": true}, and collects events until the agent's reply ends (tests/e2e/test_live_updates_e2e.py posts
// the message over REST meanwhile). Then it connects once more with a bad token, to show what a graphql-ws client
// does with chatkeep's close notice. Last line: one JSON object with what it saw.
//
// env: BASE_URL, WS_URL, TOKEN, SESSION_ID (the session's number, as GraphQL takes it)

import { ApolloClient, HttpLink, InMemoryCache, gql, split } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws'; // Node 20 has no WebSocket of its own

const { BASE_URL, WS_URL, TOKEN } = process.env;
const SESSION_ID = Number(process.env.SESSION_ID);
const FINAL = new Set(['REPLY_COMPLETED', 'REPLY_FAILED', 'REPLY_CANCELLED']);

const LIVE = gql`
  subscription Live($sessionId: Float!) {
    onTodoChatMessage(sessionId: $sessionId) {
      kind
      delta
      offset
      message { id message isBotReply status sentBy { id firstName } }
    }
  }
`;

function makeClient(token, onMessage) {
  const wsClient = createClient({
    url: WS_URL,
    webSocketImpl: WebSocket,
    connectionParams: async () => ({ authorization: `Bearer ${token}` }),
    retryAttempts: 0,
    on: { message: onMessage ?? (() => {}) },
  });
  const link = split(
    ({ query }) => {
      const definition = getMainDefinition(query);
      return definition.kind === 'OperationDefinition' && definition.operation === 'subscription';
    },
    new GraphQLWsLink(wsClient),
    new HttpLink({ uri: `${BASE_URL}/graphql`, headers: { authorization: `Bearer ${token}` } }),
  );
  return { client: new ApolloClient({ link, cache: new InMemoryCache() }), wsClient };
}

async function liveReply() {
  const { client, wsClient } = makeClient(TOKEN);
  const events = [];
  const done = new Promise((resolve, reject) => {
    const subscription = client.subscribe({ query: LIVE, variables: { sessionId: SESSION_ID } }).subscribe({
      next: (result) => {
        if (result.error) return reject(result.error);
        const event = result.data.onTodoChatMessage;
        events.push(event);
        if (FINAL.has(event.kind)) {
          subscription.unsubscribe();
          resolve();
        }
      },
      error: reject,
    });
  });
  console.log(JSON.stringify({ subscribed: true }));
  const timer = setTimeout(() => { console.error('no final event within 60 s'); process.exit(3); }, 60000);
  await done;
  clearTimeout(timer);
  // Queries still go over HTTP through the same client.
  const history = await client.query({
    query: gql`query History($id: Float!) { getOneTodoChatSession(sessionId: $id) { messages { id message } } }`,
    variables: { id: SESSION_ID },
  });
  await wsClient.dispose();
  return { events, history: history.data.getOneTodoChatSession.messages };
}

async function badToken() {
  const notices = [];
  const { client, wsClient } = makeClient('not-a-token', (message) => notices.push(message));
  const outcome = await new Promise((resolve) => {
    client.subscribe({ query: LIVE, variables: { sessionId: SESSION_ID } }).subscribe({
      next: (result) => resolve({ next: result.error ? String(result.error.message ?? result.error) : 'data' }),
      error: (error) => resolve({ error: String(error?.message ?? error) }),
    });
  });
  await wsClient.dispose();
  return { outcome, notices };
}

const live = await liveReply();
const refused = await badToken();
console.log(JSON.stringify({ ...live, refused }));
process.exit(0);
