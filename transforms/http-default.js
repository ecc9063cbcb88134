/**
 * The default http sink transformation, as bundled with Svix Stream sinks.
 *
 * @param input - The input object
 * @param input.events - The array of events in the batch. The number of events in the batch is capped by the Sink's batch size.
 * @param input.events[].payload - The message payload (string or JSON)
 * @param input.events[].eventType - The message event type (string)
 * @param input.url - The sink's URL (string)
 *
 * @returns Object describing the HTTP request to send.
 * @returns returns.config.format - "json" sends `data` as a JSON body; "raw" sends `data`, a string, as is.
 * @returns returns.config.method - Optional: "POST" (default), "PUT" or "PATCH".
 * @returns returns.config.url - Optional: another URL for this batch (the sink's URL rules apply).
 * @returns returns.config.headers - Optional: headers added to (or replacing) the sink's for this batch.
 * @returns returns.data - The body.
 */
function handler(input) {
    return {
        config: {
            format: "json"
        },
        data: input.events
    }
}
