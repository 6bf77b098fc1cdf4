/**
 * The sharing rules an endpoint registers (its profile's shared_with, allowed_functions and
 * allow_any_function_from), checked at submit so a group member learns at once, with a 403 naming the rule,
 * that a task would be refused. The endpoint checks again (interchange.ts): it is the owner's machine.
 */
import type { EndpointRecord, EndpointSharing } from './store/index.js';
import { badRequest, forbidden } from './auth.js';

/** The `sharing` field of a registration, checked; null when not sent (an endpoint from before sharing rules). */
export function endpointSharing(value: unknown): EndpointSharing | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) throw badRequest('"sharing" must be an object {allowedFunctions, anyFunction}');
  const s = value as Record<string, unknown>;
  const list = s.allowedFunctions;
  if (list !== null && !(Array.isArray(list) && list.length <= 10_000 && list.every((f) => typeof f === 'string' && f.length > 0 && f.length <= 100))) {
    throw badRequest('"sharing.allowedFunctions" must be null or an array of function ids');
  }
  if (typeof s.anyFunction !== 'boolean') throw badRequest('"sharing.anyFunction" must be true or false');
  return { allowedFunctions: list as string[] | null, anyFunction: s.anyFunction };
}

/**
 * Throws 403 when `user` (not the owner) may not run this task on the shared endpoint: only functions in
 * its allowed_functions run, unless its profile sets allow_any_function_from. An endpoint that registered
 * no rules runs no other user's tasks. The owner's tasks are not checked here.
 */
export function checkSharedUse(user: { id: string }, endpoint: EndpointRecord, functionId: string | null, where: string): void {
  if (endpoint.owner === user.id) return;
  const rules = endpoint.metadata?.sharing;
  if (rules?.anyFunction) return;
  if (functionId !== null && rules?.allowedFunctions?.includes(functionId)) return;
  const what = functionId === null ? 'a task that runs no registered function (shell or MPI)' : `function ${functionId}`;
  throw forbidden(
    `${where}: endpoint ${endpoint.id} is shared with you but runs other users' tasks only for functions in its profile's allowed_functions` +
      ` (unless the profile sets allow_any_function_from), and ${what} is not one: ask the endpoint's owner to add it`,
  );
}
