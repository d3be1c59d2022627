/**
 * Loopback ports for the clusters under test, taken below the kernel's ephemeral range: an
 * outgoing connection (the load generator's, or a peer's reconnect attempts) can then never hold
 * the port of a node that was killed and is being restarted. The chaos harness's picker.
 */
export { freePort as lowPort } from '../src/chaos/cluster.ts';
