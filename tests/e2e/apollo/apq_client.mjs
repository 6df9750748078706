// Apollo's automatic persisted queries (PersistedQueryLink) against `chatkeep dev`.
//
// Two clients with PersistedQueryLink + HttpLink run the guide's GET_SESSIONS document. The first
// sends the hash only, gets PERSISTED_QUERY_NOT_FOUND, and retries with the query (which the server
// then keeps); the second sends the hash only and is answered. A wrapped fetch records what went over
// the wire. Prints one JSON line.
//
// env: BASE_URL, TOKEN, TODO_ID.

import { createHash } from 'node:crypto';

import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { PersistedQueryLink } from '@apollo/client/link/persisted-queries';

const BASE_URL = process.env.BASE_URL ?? 'http://127.0.0.1:3000';
const TOKEN = process.env.TOKEN;
const TODO_ID = Number(process.env.TODO_ID ?? '12345');

// A unique comment makes the document (and so its hash) new to this server run.
const GET_SESSIONS = gql`
  # apq ${process.pid}-${Date.now()}
  query GetTodoChatSessions($todoId: Float!, $limit: Int, $offset: Int) {
    getTodoChatSessions(todoId: $todoId, limit: $limit, offset: $offset) {
      sessions {
        id
        title
      }
      totalCount
    }
  }
`;

const makeClient = (wire) => {
  const recordingFetch = async (uri, options) => {
    const body = JSON.parse(options.body);
    const response = await fetch(uri, options);
    const text = await response.clone().text();
    let codes = [];
    try {
      codes = (JSON.parse(text).errors ?? []).map((e) => e.extensions?.code ?? null);
    } catch {
      codes = ['<not json>'];
    }
    wire.push({
      status: response.status,
      hasQuery: typeof body.query === 'string',
      hash: body.extensions?.persistedQuery?.sha256Hash ?? null,
      codes,
    });
    return response;
  };
  const sha256 = (text) => createHash('sha256').update(text).digest('hex');
  return new ApolloClient({
    link: new PersistedQueryLink({ sha256 }).concat(new HttpLink({
      uri: `${BASE_URL}/graphql`,
      headers: { Authorization: `Bearer ${TOKEN}` },
      fetch: recordingFetch,
    })),
    cache: new InMemoryCache(),
  });
};

const main = async () => {
  const firstWire = [];
  const secondWire = [];
  const first = await makeClient(firstWire).query({ query: GET_SESSIONS, variables: { todoId: TODO_ID, limit: 5, offset: 0 } });
  const second = await makeClient(secondWire).query({ query: GET_SESSIONS, variables: { todoId: TODO_ID, limit: 5, offset: 0 } });
  console.log(JSON.stringify({
    first: { data: first.data.getTodoChatSessions, wire: firstWire },
    second: { data: second.data.getTodoChatSessions, wire: secondWire },
  }));
};

main().catch((error) => {
  console.error('apq flow failed:', error?.name, error?.message, JSON.stringify(error?.errors ?? null));
  process.exit(1);
});
