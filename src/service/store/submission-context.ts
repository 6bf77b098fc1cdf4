/**
 * Store.submissionContext from the store's single reads, for a back end where a read costs no round trip
 * (SQLite: one process, synchronous reads). PostgreSQL reads it all in one statement (postgres.ts).
 */
import type { Store, SubmissionContext } from './types.js';

export async function readSubmissionContext(store: Store, userId: string, endpointIds: readonly string[], functionIds: readonly string[]): Promise<SubmissionContext> {
  const [overrides, resultBytes, endpoints, functions] = await Promise.all([
    store.quotaOverrides(userId),
    store.resultBytesOf(userId),
    Promise.all([...new Set(endpointIds)].map((id) => store.endpoint(id))),
    Promise.all([...new Set(functionIds)].map((id) => store.function(id))),
  ]);
  const out: SubmissionContext = { overrides, resultBytes, endpoints: new Map(), functions: new Map(), groups: new Set() };
  for (const e of endpoints) if (e) out.endpoints.set(e.id, e);
  for (const f of functions) if (f) out.functions.set(f.id, f);
  const shared = new Set<string>();
  for (const r of [...out.endpoints.values(), ...out.functions.values()]) if (r.owner !== userId && r.group !== null) shared.add(r.group);
  await Promise.all([...shared].map(async (g) => {
    if (await store.isGroupMember(g, userId)) out.groups.add(g);
  }));
  return out;
}
