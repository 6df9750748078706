// The "Managing chat sessions" guide's client code on Apollo Client 4, against `chatkeep dev`.
//
// Everything between the "guide code" markers is copied from the guide unchanged (indentation restored;
// the guide's Step 2 CREATE_SESSION is the one kept, as the guide defines that name twice). The only
// things set here are the client's URL and its Authorization header. The harness below the markers runs
// the guide's flow and prints one JSON line with what it saw (tests/e2e/test_apollo_client.py reads it).
//
// env: BASE_URL (http://127.0.0.1:3000), TOKEN (a user token), TODO_ID (a number),
//      BOT_SLUG (optional: an agent registered beforehand; the starter step is skipped without it),
//      SERVICE_TOKEN (optional: a chatkeep/service token, to post a bot reply),
//      SESSION_COUNT (optional: sessions to create for the pagination loop, default 23).

import { ApolloClient, HttpLink, InMemoryCache } from '@apollo/client';
import { gql } from '@apollo/client';

const BASE_URL = process.env.BASE_URL ?? 'http://127.0.0.1:3000';
const TOKEN = process.env.TOKEN;
const TODO_ID = Number(process.env.TODO_ID ?? '12345');
const BOT_SLUG = process.env.BOT_SLUG || null;
const SERVICE_TOKEN = process.env.SERVICE_TOKEN || null;
const SESSION_COUNT = Number(process.env.SESSION_COUNT ?? '23');

if (!TOKEN) {
  console.error('TOKEN is required');
  process.exit(2);
}

// The only configuration: the URL and the Authorization header.
const makeClient = (token) => new ApolloClient({
  link: new HttpLink({ uri: `${BASE_URL}/graphql`, headers: { Authorization: `Bearer ${token}` } }),
  cache: new InMemoryCache(),
});
const client = makeClient(TOKEN);

// ------------------------------------------------------------------------------ guide code (unchanged)

const GET_SESSIONS = gql`
  query GetTodoChatSessions($todoId: Float!, $limit: Int, $offset: Int) {
    getTodoChatSessions(todoId: $todoId, limit: $limit, offset: $offset) {
      sessions {
        id
        title
        createdAt
        updatedAt
        defaultBotId
      }
      totalCount
    }
  }
`;
const listSessions = async (client, todoId, limit = 20, offset = 0) => {
  const { data } = await client.query({
    query: GET_SESSIONS,
    variables: { todoId, limit, offset },
  });
  return data.getTodoChatSessions;
};

const CREATE_SESSION = gql`
  mutation CreateTodoChatSession($data: TodoChatSessionInput!) {
    createTodoChatSession(data: $data) {
      id
      title
      createdAt
      defaultBotId
      todoId
    }
  }
`;
const createSession = async (client, todoId, title = 'New Chat') => {
  const { data } = await client.mutate({
    mutation: CREATE_SESSION,
    variables: {
      data: {
        todoId,
        title,
      },
    },
  });
  return data.createTodoChatSession;
};

const GET_SESSION = gql`
  query GetOneTodoChatSession($sessionId: Float!) {
    getOneTodoChatSession(sessionId: $sessionId) {
      id
      title
      createdAt
      updatedAt
      defaultBotId
      todoId
      messages {
        id
        message
        createdAt
        sentBy {
          id
          firstName
        }
        isBotReply
      }
    }
  }
`;
const getSessionDetails = async (client, sessionId) => {
  const { data } = await client.query({
    query: GET_SESSION,
    variables: { sessionId },
  });
  return data.getOneTodoChatSession;
};

const listSessionsWithPagination = async (client, todoId) => {
  const pageSize = 10;
  let offset = 0;
  let allSessions = [];
  let totalCount = 0;
  // Fetch first page
  const { data } = await client.query({
    query: GET_SESSIONS,
    variables: { todoId, limit: pageSize, offset },
  });
  totalCount = data.getTodoChatSessions.totalCount;
  allSessions = data.getTodoChatSessions.sessions;
  // Fetch remaining pages if needed
  while (allSessions.length < totalCount) {
    offset += pageSize;
    const { data: nextPage } = await client.query({
      query: GET_SESSIONS,
      variables: { todoId, limit: pageSize, offset },
    });
    allSessions = [...allSessions, ...nextPage.getTodoChatSessions.sessions];
  }
  return allSessions;
};

const GET_STARTER_SESSION = gql`
  query GetOrCreateUserStartTodoChatSession($botSlug: String) {
    getOrCreateUserStartTodoChatSession(botSlug: $botSlug) {
      id
      title
      defaultBotId
    }
  }
`;
const getStarterSession = async (client, botSlug) => {
  const { data } = await client.query({
    query: GET_STARTER_SESSION,
    variables: { botSlug },
  });
  return data.getOrCreateUserStartTodoChatSession;
};

const SEARCH_SESSIONS = gql`
  query GetSearchTodoChatSessions($todoId: Float!, $searchQuery: String) {
    getSearchTodoChatSessions(todoId: $todoId, searchQuery: $searchQuery) {
      id
      title
      createdAt
    }
  }
`;
const searchSessions = async (client, todoId, query) => {
  const { data } = await client.query({
    query: SEARCH_SESSIONS,
    variables: { todoId, searchQuery: query },
  });
  return data.getSearchTodoChatSessions;
};

const UPDATE_SESSION = gql`
  mutation UpdateTodoChatSession($data: TodoChatSessionInput!, $id: Float!) {
    updateTodoChatSession(data: $data, id: $id) {
      id
      title
      updatedAt
    }
  }
`;
const updateSession = async (client, sessionId, updates) => {
  const { data } = await client.mutate({
    mutation: UPDATE_SESSION,
    variables: {
      id: sessionId,
      data: updates,
    },
  });
  return data.updateTodoChatSession;
};

const DELETE_SESSION = gql`
  mutation DeleteTodoChatSession($id: Float!) {
    deleteTodoChatSession(id: $id) {
      id
    }
  }
`;
const deleteSession = async (client, sessionId) => {
  const { data } = await client.mutate({
    mutation: DELETE_SESSION,
    variables: { id: sessionId },
  });
  return data.deleteTodoChatSession;
};

const DELETE_MANY_SESSIONS = gql`
  mutation DeleteManyTodoChatSession($ids: [Int!]!) {
    deleteManyTodoChatSession(ids: $ids)
  }
`;
const deleteManySessions = async (client, sessionIds) => {
  const { data } = await client.mutate({
    mutation: DELETE_MANY_SESSIONS,
    variables: { ids: sessionIds },
  });
  return data.deleteManyTodoChatSession;
};

class SessionManager {
  constructor(client, todoId) {
    this.client = client;
    this.todoId = todoId;
  }
  async listSessions(limit = 20, offset = 0) {
    const query = gql`
      query GetTodoChatSessions($todoId: Float!, $limit: Int, $offset: Int) {
        getTodoChatSessions(todoId: $todoId, limit: $limit, offset: $offset) {
          sessions {
            id
            title
            createdAt
            defaultBotId
          }
          totalCount
        }
      }
    `;
    const { data } = await this.client.query({
      query,
      variables: { todoId: this.todoId, limit, offset },
    });
    return data.getTodoChatSessions;
  }
  async createSession(title = 'New Chat', options = {}) {
    const mutation = gql`
      mutation CreateTodoChatSession($data: TodoChatSessionInput!) {
        createTodoChatSession(data: $data) {
          id
          title
          createdAt
          defaultBotId
        }
      }
    `;
    const { data } = await this.client.mutate({
      mutation,
      variables: {
        data: {
          todoId: this.todoId,
          title,
          ...options,
        },
      },
    });
    return data.createTodoChatSession;
  }
  async getSessionDetails(sessionId) {
    const query = gql`
      query GetOneTodoChatSession($sessionId: Float!) {
        getOneTodoChatSession(sessionId: $sessionId) {
          id
          title
          createdAt
          updatedAt
          defaultBotId
          messages {
            id
            message
            createdAt
            isBotReply
            sentBy {
              firstName
            }
          }
        }
      }
    `;
    const { data } = await this.client.query({
      query,
      variables: { sessionId },
    });
    return data.getOneTodoChatSession;
  }
  async updateSession(sessionId, updates) {
    const mutation = gql`
      mutation UpdateTodoChatSession($data: TodoChatSessionInput!, $id: Float!) {
        updateTodoChatSession(data: $data, id: $id) {
          id
          title
          updatedAt
        }
      }
    `;
    const { data } = await this.client.mutate({
      mutation,
      variables: {
        id: sessionId,
        data: updates,
      },
    });
    return data.updateTodoChatSession;
  }
  async deleteSession(sessionId) {
    const mutation = gql`
      mutation DeleteTodoChatSession($id: Float!) {
        deleteTodoChatSession(id: $id) {
          id
        }
      }
    `;
    await this.client.mutate({
      mutation,
      variables: { id: sessionId },
    });
  }
  async deleteManySessions(sessionIds) {
    const mutation = gql`
      mutation DeleteManyTodoChatSession($ids: [Int!]!) {
        deleteManyTodoChatSession(ids: $ids)
      }
    `;
    const { data } = await this.client.mutate({
      mutation,
      variables: { ids: sessionIds },
    });
    return data.deleteManyTodoChatSession;
  }
  async searchSessions(query) {
    const gqlQuery = gql`
      query GetSearchTodoChatSessions($todoId: Float!, $searchQuery: String) {
        getSearchTodoChatSessions(todoId: $todoId, searchQuery: $searchQuery) {
          id
          title
          createdAt
        }
      }
    `;
    const { data } = await this.client.query({
      query: gqlQuery,
      variables: { todoId: this.todoId, searchQuery: query },
    });
    return data.getSearchTodoChatSessions;
  }
  async getStarterSession(botSlug) {
    const query = gql`
      query GetOrCreateUserStartTodoChatSession($botSlug: String) {
        getOrCreateUserStartTodoChatSession(botSlug: $botSlug) {
          id
          title
          defaultBotId
        }
      }
    `;
    const { data } = await this.client.query({
      query,
      variables: { botSlug },
    });
    return data.getOrCreateUserStartTodoChatSession;
  }
  async updateBotConfig(botId, sessionId, config) {
    const mutation = gql`
      mutation UpdateCustomBotConfig($data: BotCustomConfigInput!) {
        updateTodoChatSessionCustomBotConfig(data: $data) {
          id
        }
      }
    `;
    const { data } = await this.client.mutate({
      mutation,
      variables: {
        data: {
          botId,
          sessionId,
          ...config,
        },
      },
    });
    return data.updateTodoChatSessionCustomBotConfig;
  }
}

// ------------------------------------------------------------------------------ end of guide code

// Not in the guide (DESIGN.md section 4 adds it): post messages so the details call has history.
const CREATE_MESSAGE = gql`
  mutation CreateTodoChatMessage($data: TodoChatMessageInput!) {
    createTodoChatMessage(data: $data) {
      id
      message
      isBotReply
    }
  }
`;

// The error codes a client sees (Apollo Client 4 throws CombinedGraphQLErrors with the server's errors).
const errorCodes = (error) => (error?.errors ?? []).map((e) => e.extensions?.code ?? null);

const expectError = async (promise) => {
  try {
    await promise;
    return { codes: [], thrown: false };
  } catch (error) {
    return { codes: errorCodes(error), thrown: true, name: error?.name ?? null };
  }
};

// Dev-only endpoint of the local runtime: wait until the stream processor has indexed every write.
const drainStream = async () => {
  try {
    const response = await fetch(`${BASE_URL}/_local/stream/drain`, { method: 'POST', body: '{}' });
    return response.ok;
  } catch {
    return false;
  }
};

const main = async () => {
  const out = { todoId: TODO_ID, steps: [] };
  const step = (name) => out.steps.push(name);

  // Step 2 and the SessionManager: create sessions.
  const first = await createSession(client, TODO_ID, 'Customer Support');
  step('createSession');
  const sessionManager = new SessionManager(client, TODO_ID);
  const billing = await sessionManager.createSession('Billing Inquiry');
  const technical = await sessionManager.createSession('Technical Support');
  const sales = await sessionManager.createSession('Sales Question');
  step('SessionManager.createSession');
  const extra = [];
  for (let i = 0; i < SESSION_COUNT - 4; i += 1) {
    extra.push(await createSession(client, TODO_ID, `Filler ${i}`));
  }
  out.created = { first, billing, technical, sales, extra: extra.map((s) => s.id) };

  // Messages, then Step 3: details with the history, rendered as the guide's usage code does.
  await client.mutate({ mutation: CREATE_MESSAGE, variables: { data: { sessionId: first.id, message: 'Hello, I have a billing question' } } });
  let botReply = null;
  if (SERVICE_TOKEN) {
    const service = makeClient(SERVICE_TOKEN);
    const { data } = await service.mutate({
      mutation: CREATE_MESSAGE,
      variables: { data: { sessionId: first.id, message: 'Happy to help with billing.', isBotReply: true } },
    });
    botReply = data.createTodoChatMessage;
  }
  out.botReply = botReply;
  const session = await getSessionDetails(client, first.id);
  out.details = session;
  out.rendered = session.messages.map((msg) => {
    const sender = msg.isBotReply ? 'Bot' : msg.sentBy.firstName;
    return `${sender}: ${msg.message}`;
  });
  const managerDetails = await sessionManager.getSessionDetails(billing.id);
  out.managerDetails = { id: managerDetails.id, messages: managerDetails.messages.length };
  step('getSessionDetails');

  // Rename (standalone function and the SessionManager).
  out.renamed = await updateSession(client, first.id, { title: 'Updated Session Title' });
  out.renamedByManager = await sessionManager.updateSession(technical.id, { title: 'Premium Support' });
  step('updateSession');

  // Step 1 and the pagination loop until totalCount.
  out.firstPage = await listSessions(client, TODO_ID);
  const all = await listSessionsWithPagination(client, TODO_ID);
  out.paginated = { count: all.length, ids: all.map((s) => s.id), titles: all.map((s) => s.title) };
  out.managerList = await sessionManager.listSessions(100, 0);
  step('listSessionsWithPagination');

  // Starter session (needs an agent registered beforehand), twice: the same session both times.
  if (BOT_SLUG) {
    const starterSession = await getStarterSession(client, BOT_SLUG);
    // A fresh client: Apollo's cache would otherwise answer the second call itself.
    const again = await new SessionManager(makeClient(TOKEN), TODO_ID).getStarterSession(BOT_SLUG);
    out.starter = { first: starterSession, again };
    // The agent's id is the starter session's defaultBotId: configure the bot of a session with it.
    out.botConfig = await sessionManager.updateBotConfig(starterSession.defaultBotId, first.id, {
      model: 'gpt-4',
      temperature: 0.7,
    });
    out.unknownSlug = await expectError(getStarterSession(client, 'no-such-agent'));
    step('getStarterSession');
  }

  // Search (served from the stream-maintained index).
  out.streamDrained = await drainStream();
  out.search = {
    billing: await searchSessions(client, TODO_ID, 'billing'),
    support: await sessionManager.searchSessions('support'),
    nothing: await searchSessions(client, TODO_ID, 'zzzunmatched'),
  };
  step('searchSessions');

  // Errors as a client sees them.
  out.errors = {
    notFound: await expectError(getSessionDetails(client, 1)),
    titleTooLong: await expectError(createSession(client, TODO_ID, 'x'.repeat(201))),
  };

  // Delete one, then many.
  out.deleted = await deleteSession(client, sales.id);
  await sessionManager.deleteSession(billing.id);
  out.deletedMany = await deleteManySessions(client, extra.map((s) => s.id));
  out.deletedManyByManager = await sessionManager.deleteManySessions([technical.id, sales.id]);
  out.afterDelete = await new SessionManager(makeClient(TOKEN), TODO_ID).listSessions(100, 0);
  out.deletedDetails = await expectError(sessionManager.getSessionDetails(sales.id));
  step('deleteManySessions');

  console.log(JSON.stringify(out));
};

main().catch((error) => {
  console.error('guide flow failed:', error?.name, error?.message, JSON.stringify(error?.errors ?? null));
  process.exit(1);
});
