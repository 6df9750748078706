"""chatkeep's local runtime: API Gateway (HTTP API, payload 2.0) + JWT authorizer + Lambda + DynamoDB
Streams/TTL emulation over an embedded moto server. Development only; never deployed."""
