/**
 * Errors with a stable string `code` and suggestions for the person reading them.
 * The CLI maps codes to exit codes in one place (src/cli/handle.ts).
 */
export class FuncxError extends Error {
  readonly code: string;
  readonly suggestions: string[];
  constructor(code: string, message: string, suggestions: string[] = []) {
    super(message);
    this.name = new.target.name;
    this.code = code;
    this.suggestions = suggestions;
  }
}

/** A profile or option is wrong; the message names the file and field. */
export class ConfigError extends FuncxError {
  constructor(message: string, suggestions: string[] = []) {
    super('CONFIG', message, suggestions);
  }
}

/** A scheduler command failed; keeps what it printed. */
export class SubmitError extends FuncxError {
  constructor(
    message: string,
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super('SUBMIT', message);
  }
}

/** A wire message we cannot accept (malformed, unknown kind, wrong version). */
export class ProtocolError extends FuncxError {
  /** The `kind` of the message at fault, when the frame got that far (e.g. "register"). */
  readonly messageKind: string | undefined;
  constructor(message: string, messageKind?: string) {
    super('PROTOCOL', message);
    this.messageKind = messageKind;
  }
}

/** An operation asked of an object in a state that does not allow it. */
export class IllegalStateError extends FuncxError {
  constructor(message: string) {
    super('ILLEGAL_STATE', message);
  }
}
