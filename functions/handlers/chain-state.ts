/**
 * The evidence chain's store, built once per container for the sequencer (and the local host,
 * tests and the bench, which seal in process). Not part of AppState: the sealing code then stays
 * out of the bundles of every handler that never seals (the deciding functions' cold start).
 */
import { ChainStore } from '../store/chain.js';
import type { AppState } from './app-state.js';

const built = new WeakMap<AppState, ChainStore>();

export function chainOf(state: AppState): ChainStore {
  let chain = built.get(state);
  if (!chain) {
    chain = new ChainStore(state.doc, state.config.tableName);
    built.set(state, chain);
  }
  return chain;
}
