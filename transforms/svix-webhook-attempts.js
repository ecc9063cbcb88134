/**
 * Svix's OpenTelemetry sink example (webhook delivery telemetry), done right.
 *
 * Events: `message.attempt` (one delivery attempt of a message to an endpoint)
 * and `http.attempt` (the HTTP request made during that attempt), payloads like
 *   {appId?, msgId, attemptId, startTime, endTime, url?, responseStatusCode?}
 *
 * Fixes over the example in Svix's docs: the missing comma after `spanIdKey`,
 * `parentSpanIdKey` instead of the misspelt `parentIdKey`, span kinds
 * (INTERNAL for the attempt, CLIENT for the outgoing HTTP request), a stable
 * span ID for `http.attempt` too, and ERROR status for failed requests.
 *
 * One trace per message (traceIdKey = msgId); each http.attempt is a child of
 * the message.attempt with the same attemptId.
 */
function handler(input) {
    const spans = input.events.map((event) => {
        const payload = event.payload;
        const isHttp = event.eventType === "http.attempt";
        const span = {
            name: event.eventType,
            kind: isHttp ? "CLIENT" : "INTERNAL",
            startTime: payload.startTime,
            endTime: payload.endTime,
            traceIdKey: payload.msgId,
            spanIdKey: isHttp ? payload.attemptId + "/http" : payload.attemptId,
            parentSpanIdKey: isHttp ? payload.attemptId : undefined,
            attributes: {
                msgId: payload.msgId,
                appId: payload.appId,
                attemptId: payload.attemptId,
                "url.full": payload.url,
                "http.request.method": isHttp ? "POST" : undefined,
                "http.response.status_code": payload.responseStatusCode,
            },
        };
        const status = payload.responseStatusCode;
        if (isHttp && typeof status === "number") {
            span.status = status >= 200 && status < 300
                ? { code: "OK" }
                : { code: "ERROR", message: "HTTP " + status };
        }
        return span;
    });

    return {
        config: {
            serviceName: "my.webhook.service",
            scope: { name: "my.webhook.scope", version: "2.0" },
        },
        spans,
    };
}
