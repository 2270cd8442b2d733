import { Component, Fragment, type ComponentChildren } from "preact";

interface Props {
  /** The page, as the message names it ("device", "Traffic map"). */
  name: string;
  children: ComponentChildren;
}

/**
 * A page that throws while drawing (an answer of a shape it does not know) says so in its place, and only there: the
 * header, its navigation and Sign out stay. Without it the whole console was unmounted, and the operator saw a blank tab
 * (review 139). The error goes to the browser's console, whole; Try again draws the page anew, reading what it shows
 * again. Given a key per route, another page (or the same one again) starts afresh.
 */
export class PageBoundary extends Component<Props, { error?: unknown; attempt: number }> {
  override state: { error?: unknown; attempt: number } = { attempt: 0 };

  override componentDidCatch(error: unknown) {
    console.error(`simroot console: the ${this.props.name} page failed to draw`, error);
    this.setState({ error });
  }

  override render() {
    const { error, attempt } = this.state;
    if (error === undefined) return <Fragment key={attempt}>{this.props.children}</Fragment>;
    const { name } = this.props;
    return (
      <section aria-labelledby="failed-title">
        <h1 id="failed-title">Something went wrong</h1>
        <p role="alert" class="error">
          The {name} page could not be shown: {error instanceof Error ? error.message : String(error)}. The details are in the browser's
          console.
        </p>
        <div class="buttons">
          <button type="button" onClick={() => this.setState({ error: undefined, attempt: attempt + 1 })}>
            Try again
          </button>
          {name !== "Fleet" && <a href="#/fleet">Back to the fleet</a>}
        </div>
      </section>
    );
  }
}
