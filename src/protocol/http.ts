/**
 * The service's HTTP contract: the body of every request and answer of the /v1 API, declared once and
 * imported by both sides (the service's routes in src/service/routes/ and the SDK in src/sdk/, and
 * the endpoint's registration in src/endpoint/service-link/registration.ts). Times are ISO 8601 strings;
 * opaque payloads (arguments, results) are base64.
 */
import type { ForwarderAddress } from './forwarder-messages.js';
import type { ResourceSpec } from './resource-spec.js';

/** Where a task is in its life; `success` and `failed` are final. */
export type TaskState = 'received' | 'waiting-for-endpoint' | 'waiting-for-nodes' | 'running' | 'success' | 'failed';

/** Whether an endpoint is connected to its forwarder now. */
export type EndpointState = 'Active' | 'Inactive';

/** Every error answer (4xx, 5xx). `code` is stable (UNAUTHORIZED, FORBIDDEN, NOT_FOUND, PROTOCOL_MISMATCH...). */
export interface ErrorBody {
  statusCode: number;
  code: string;
  message: string;
  /** The limit that was exceeded (413 TOO_MANY_IDS, 413 body too large, 429 quotas). */
  limit?: number;
  /** Other details of the error (e.g. a quota's name and usage). */
  [detail: string]: unknown;
}

// ---- tasks -------------------------------------------------------------------------------------------------

/**
 * One task to run: a registered function with its arguments, a shell command, or an MPI application, with
 * an optional resource specification (nodes, ranks) for the endpoint's MPI engine.
 */
export type TaskSpec = (
  | {
      endpointId: string;
      functionId: string;
      /** base64 of `encodeArgs([...])` (protocol/payload.ts); "" is a call without arguments. */
      args: string;
    }
  | { endpointId: string; shell: ShellSpec }
  | { endpointId: string; mpi: MpiSpec }
) & { resources?: ResourceSpec };

export interface ShellSpec {
  command: string;
  walltimeMs?: number;
  cwd?: string;
  env?: Record<string, string>;
}

export interface MpiSpec {
  command: string;
  /** Ranks in all; without it, the resource specification's num_ranks. */
  ranks?: number;
  walltimeMs?: number;
}

/** POST /v1/tasks (the array of specs alone is accepted too). */
export interface SubmitTasksRequest {
  tasks: TaskSpec[];
}

/** Task ids in the order of the specs. */
export interface SubmitTasksResponse {
  taskIds: string[];
  /**
   * With `?wait=SECONDS` (one task): the task, if it finished within the wait, as GET /v1/tasks/:id shows it
   * (createdAt only when the service read it back). Absent when it did not finish in time.
   */
  finished?: FinishedTaskView;
}

/** A finished task in a submission's reply (POST /v1/tasks?wait=SECONDS). */
export type FinishedTaskView = Omit<TaskView, 'createdAt'> & { createdAt?: string };

/** A task as the API shows it (GET /v1/tasks/:id); `result` is the base64 of the opaque result payload. */
export interface TaskView {
  taskId: string;
  state: TaskState;
  endpointId: string;
  functionId: string | null;
  /** Set once the task is finished. */
  failed?: boolean;
  /** Set once the task is finished: base64 of an encoded Outcome ("" when it has none). */
  result?: string;
  createdAt: string;
  updatedAt: string;
}

/** POST /v1/tasks/results?wait=SECONDS. */
export interface TaskResultsRequest {
  ids: string[];
  /** "all" (default): answer every id once all finished; "any": answer the finished ones once one is. */
  mode?: 'all' | 'any';
}

export interface TaskResultsResponse {
  results: TaskView[];
  /** Mode "any" only: how many of the ids are not finished. */
  pending?: number;
  /** Ids whose answers did not fit this reply (maxReplyBytes), in order: ask for them next. */
  remaining: string[];
}

export interface TransitionView {
  state: TaskState;
  /** Who moved the task ("user:alice", "endpoint:ID", "service"). */
  actor: string;
  at: string;
}

/** GET /v1/tasks/:id/transitions. */
export interface TransitionsResponse {
  taskId: string;
  transitions: TransitionView[];
}

// ---- functions ---------------------------------------------------------------------------------------------

/** POST /v1/functions. */
export interface RegisterFunctionRequest {
  name: string;
  source: string;
  /** Share with this group (id or name). */
  group?: string;
}

export interface RegisterFunctionResponse {
  functionId: string;
}

/** GET /v1/functions/:id. */
export interface FunctionView {
  functionId: string;
  name: string;
  owner: string;
  group: string | null;
  source: string;
  createdAt: string;
}

// ---- endpoints ---------------------------------------------------------------------------------------------

/** POST /v1/endpoints: register (or start again) an endpoint. */
export interface RegisterEndpointRequest {
  protocol: number;
  name: string;
  /** The endpoint's CURVE public key (Z85). */
  publicKey: string;
  /** Register again under this id (only its owner may). */
  endpointId?: string;
  /** The group the endpoint is shared with (the profile's shared_with); absent: not shared. Sent at every start. */
  group?: string;
  /** The owner's username and email (the profile's global options), stored by the service and shown by `list`. */
  metadata?: EndpointMetadata;
  /** What other users may run (the profile's allowed_functions and allow_any_function_from). */
  sharing?: EndpointSharing;
}

/** What an endpoint tells the service about its owner at registration (and, stored with it, its sharing rules). */
export interface EndpointMetadata { username: string; email: string; sharing?: EndpointSharing }

/** Which functions users other than the owner may run on a shared endpoint. */
export interface EndpointSharing {
  /** The profile's allowed_functions; null: unset (other users run nothing unless anyFunction). */
  allowedFunctions: string[] | null;
  /** The profile sets allow_any_function_from. */
  anyFunction: boolean;
}

export interface RegisterEndpointResponse {
  endpointId: string;
  forwarder: ForwarderAddress;
  protocol: number;
}

/** An endpoint as the API shows it (GET /v1/endpoints, /v1/endpoints/:id). */
export interface EndpointView {
  endpointId: string;
  name: string;
  /** The owner's user name. */
  owner: string;
  state: EndpointState;
  lastSeen: string | null;
  /** The sharing group's name, or null. */
  group: string | null;
  /** Tasks waiting for the endpoint. */
  queued: number;
  /** The owner's username and email as the endpoint registered them, or null. */
  metadata: EndpointMetadata | null;
}

export interface EndpointListResponse {
  endpoints: EndpointView[];
}

/** GET /v1/endpoints/:id/status: the view plus the endpoint's own report (engine, managers, blocks). */
export interface EndpointStatusResponse extends EndpointView {
  report: unknown;
}

/** DELETE /v1/endpoints/:id (owner only): its unfinished tasks fail with EndpointDeleted. */
export interface EndpointDeleteResponse {
  endpointId: string;
  deleted: true;
  failedTasks: number;
}

/** POST /v1/endpoints/:id/stop. */
export interface EndpointStopResponse {
  endpointId: string;
  stopping: true;
  result: unknown;
}

// ---- users and groups --------------------------------------------------------------------------------------

/** GET /v1/health (no token needed). */
export interface HealthResponse {
  ok: true;
  protocol: number;
  pid: number;
}

/** GET /v1/whoami. */
export interface WhoamiResponse {
  userId: string;
  name: string;
  /** Names of the groups the user belongs to. */
  groups: string[];
  /** The same groups with their ids and owners (by name). */
  memberships: Array<{ groupId: string; name: string; owner: string }>;
}

/** POST /v1/groups. */
export interface CreateGroupRequest {
  name: string;
}

export interface CreateGroupResponse {
  groupId: string;
  name: string;
}

export interface GroupView {
  groupId: string;
  name: string;
  owner: string;
  /** Member user names. */
  members: string[];
}

/** GET /v1/groups. */
export interface GroupListResponse {
  groups: GroupView[];
}

/** POST /v1/groups/:id/members. */
export interface AddMemberRequest {
  user: string;
}

export interface AddMemberResponse {
  groupId: string;
  name: string;
  /** The name invited: the same answer whether or not such a user exists; they join by accepting. */
  invited: string;
}
