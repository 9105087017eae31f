/** What a control plane imports: the contract (schemas and types) and the client. */
export * from './contract/index.js';
export * from './client/index.js';
