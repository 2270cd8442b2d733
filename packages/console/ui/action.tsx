/**
 * What a button does when it acts on the control plane: whether it is at work, and why it failed. A replay, a grant's
 * revocation or an export that the API refused said nothing, and the user took it for done (review 118).
 */
import { useState } from "preact/hooks";
import { ApiError } from "./api.ts";

export interface Action {
  /** What is at work (its name as `run` was given it), if anything. */
  readonly busy: string | undefined;
  /** Why the last run failed, as a sentence; cleared by the next run. */
  readonly failure: string | undefined;
  /** Runs `act`, named `what` ("The replay of ...") in the failure it reports. */
  readonly run: (what: string, act: () => Promise<unknown>) => Promise<void>;
}

export function useAction(): Action {
  const [busy, setBusy] = useState<string>();
  const [failure, setFailure] = useState<string>();
  const run = async (what: string, act: () => Promise<unknown>) => {
    setBusy(what);
    setFailure(undefined);
    try {
      await act();
    } catch (error) {
      setFailure(`${what} failed: ${error instanceof ApiError ? error.message : String(error)}`);
    } finally {
      setBusy(undefined);
    }
  };
  return { busy, failure, run };
}

/** The failure of an action, announced (role=alert) where the user acted. */
export function ActionFailure({ action }: { action: Action }) {
  return action.failure ? (
    <p role="alert" class="error">
      {action.failure}
    </p>
  ) : null;
}
