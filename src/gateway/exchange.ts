// One request to one replica through undici's dispatch API: headers arrive as a promise, the body
// goes to a sink with backpressure (pause/resume the socket), abort() cancels at any point. Used
// instead of Pool.request because a Readable per response showed up as a large share of the
// gateway's CPU time in profiles.
import type { IncomingHttpHeaders } from "node:http";
import type { Dispatcher } from "undici";

export interface ResponseHead {
  statusCode: number;
  headers: IncomingHttpHeaders;
}

export interface BodySink {
  /** A chunk of the body; return false to pause the replica's socket until resume(). */
  data(chunk: Buffer): boolean;
  end(): void;
  error(error: Error): void;
}

export class UpstreamExchange implements Dispatcher.DispatchHandler {
  readonly head: Promise<ResponseHead>;
  private resolveHead!: (head: ResponseHead) => void;
  private rejectHead!: (error: Error) => void;
  private controller: Dispatcher.DispatchController | undefined;
  private abortReason: Error | undefined;
  private headSettled = false;
  private sink: BodySink | undefined;
  // Body events that arrive before a sink is attached (small bodies come with their headers).
  private early: Buffer[] = [];
  private ended = false;
  private failure: Error | undefined;

  constructor() {
    this.head = new Promise<ResponseHead>((resolve, reject) => {
      this.resolveHead = resolve;
      this.rejectHead = reject;
    });
    // A rejection nobody awaits (the exchange was aborted before its caller looked) is not an error.
    this.head.catch(() => {});
  }

  /** Sends the request on `dispatcher`; the outcome comes through `head` and the sink. */
  start(dispatcher: Dispatcher, options: Dispatcher.DispatchOptions): this {
    dispatcher.dispatch(options, this);
    return this;
  }

  abort(reason: Error): void {
    if (this.abortReason) return;
    this.abortReason = reason;
    this.controller?.abort(reason);
  }

  /** Receives the body from now on (what arrived before is replayed at once). */
  attach(sink: BodySink): void {
    this.sink = sink;
    const early = this.early;
    this.early = [];
    for (const chunk of early) {
      if (!sink.data(chunk)) this.controller?.pause();
    }
    if (this.failure) sink.error(this.failure);
    else if (this.ended) sink.end();
  }

  resume(): void {
    this.controller?.resume();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.abortReason) controller.abort(this.abortReason);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    // 1xx informational heads are not the response.
    if (statusCode < 200) return;
    this.controller = controller;
    this.headSettled = true;
    this.resolveHead({ statusCode, headers });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.sink) {
      this.early.push(chunk);
      return;
    }
    if (!this.sink.data(chunk)) controller.pause();
  }

  onResponseEnd(): void {
    this.ended = true;
    this.sink?.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const failure = this.abortReason ?? error;
    if (!this.headSettled) {
      this.headSettled = true;
      this.rejectHead(failure);
      return;
    }
    this.failure = failure;
    this.sink?.error(failure);
  }
}
