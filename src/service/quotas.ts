/**
 * A user's quotas (the service's, with the user's own overrides set by `funcx-service user quota`) and the
 * check of stored result bytes at submission. Counted quotas are checked by the store in the transaction
 * that writes; result bytes are refused before anything is written.
 */
import { QuotaExceededError, type Store } from './store/index.js';
import { quotasFor, type ServiceQuotas } from './limits.js';

/** The quotas that apply to this user now. */
export async function quotasOf(store: Store, service: ServiceQuotas, userId: string): Promise<ServiceQuotas> {
  return quotasFor(service, await store.quotaOverrides(userId));
}

/** Throw QuotaExceededError (→ 429, nothing written) when the user's stored results reach their quota. */
export async function checkResultBytes(store: Store, quotas: ServiceQuotas, userId: string): Promise<void> {
  refuseOverResultBytes(quotas, await store.resultBytesOf(userId));
}

/** checkResultBytes with `used` (store.resultBytesOf) read already, e.g. beside the quotas. */
export function refuseOverResultBytes(quotas: ServiceQuotas, used: number): void {
  if (used >= quotas.resultBytes) throw new QuotaExceededError('resultBytes', used, quotas.resultBytes, 0);
}
