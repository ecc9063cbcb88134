/**
 * AI-run events -> spans shaped like the Vercel AI SDK's own telemetry
 * (`experimental_telemetry`), as The Context Company's Observatory, MLflow,
 * Langfuse and other AI SDK readers expect them.
 *
 * Events (see transforms/samples/vercel-ai-sdk.events.json):
 *   ai.run      {runId, sessionId?, operation: generateText|streamText|generateObject|streamObject,
 *                functionId?, provider, model, system?, prompt? | messages?, text?, object?,
 *                finishReason?, usage?: {promptTokens, completionTokens}, maxOutputTokens?,
 *                metadata?: {...}, error?: {message}, startTime, endTime}
 *   ai.step     {runId, stepIndex, operation?, provider, model, responseModel?, responseId?,
 *                messages?, text?, toolCalls?, finishReason?, usage?, msToFirstChunk?,
 *                error?, startTime, endTime}
 *   ai.toolCall {runId, stepIndex?, toolCallId, toolName, args, result?, error?,
 *                startTime, endTime}
 *
 * Spans, one trace per run (traceIdKey = runId on every span, so a step or a
 * tool call that arrives in a later batch still joins its run):
 *   ai.generateText | ai.streamText | ai.generateObject | ai.streamObject   (the run)
 *   ├─ ai.generateText.doGenerate | ai.streamText.doStream | ...           (one per step)
 *   └─ ai.toolCall                                                          (one per tool call)
 * with the SDK's attribute names: operation.name, ai.operationId, ai.model.id,
 * ai.model.provider, ai.prompt, ai.prompt.messages, ai.response.text /
 * .object / .finishReason / .toolCalls, ai.usage.promptTokens /
 * completionTokens, ai.toolCall.name / .id / .args / .result,
 * ai.telemetry.functionId, ai.telemetry.metadata.*, and on steps the gen_ai.*
 * attributes the SDK adds. Additions the SDK does not emit: ai.step.index, and
 * the run id as `tcc.runId` (and `ai.telemetry.metadata.tcc.runId`, where the
 * SDK puts `telemetry.metadata`), the session as `tcc.sessionId`: The Context
 * Company groups a run's spans by these. The tracer scope is "ai", as the SDK's.
 */
const SERVICE_NAME = "ai-app"; // change to your service's name

function opName(base, functionId) {
    return functionId ? base + " " + functionId : base;
}

function stepSpanName(operation) {
    return operation === "streamText" || operation === "streamObject"
        ? "ai." + operation + ".doStream"
        : "ai." + operation + ".doGenerate";
}

function json(value) {
    return value === undefined ? undefined : JSON.stringify(value);
}

function runAttributes(p) {
    const a = { "tcc.runId": p.runId, "tcc.sessionId": p.sessionId };
    const metadata = Object.assign({}, p.metadata || {});
    metadata["tcc.runId"] = p.runId;
    if (p.sessionId !== undefined) metadata["tcc.sessionId"] = p.sessionId;
    for (const key of Object.keys(metadata)) a["ai.telemetry.metadata." + key] = metadata[key];
    return a;
}

function usage(a, u) {
    if (!u) return;
    a["ai.usage.promptTokens"] = u.promptTokens;
    a["ai.usage.completionTokens"] = u.completionTokens;
}

function status(p) {
    return p.error ? { code: "ERROR", message: p.error.message } : undefined;
}

function run(p) {
    const operationId = "ai." + p.operation;
    const a = {
        "operation.name": opName(operationId, p.functionId),
        "ai.operationId": operationId,
        "resource.name": p.functionId,
        "ai.telemetry.functionId": p.functionId,
        "ai.model.id": p.model,
        "ai.model.provider": p.provider,
        "ai.prompt": p.system === undefined && p.prompt === undefined && p.messages === undefined
            ? undefined
            : json({ system: p.system, prompt: p.prompt, messages: p.messages }),
        "ai.response.text": p.text,
        "ai.response.object": json(p.object),
        "ai.response.finishReason": p.finishReason,
        "ai.settings.maxOutputTokens": p.maxOutputTokens,
    };
    usage(a, p.usage);
    return {
        name: operationId,
        startTime: p.startTime,
        endTime: p.endTime,
        traceIdKey: p.runId,
        spanIdKey: p.runId,
        attributes: Object.assign(a, runAttributes(p)),
        status: status(p),
    };
}

function step(p, operations) {
    const name = stepSpanName(p.operation || operations[p.runId] || "generateText");
    const a = {
        "operation.name": name,
        "ai.operationId": name,
        "ai.step.index": p.stepIndex,
        "ai.model.id": p.model,
        "ai.model.provider": p.provider,
        "ai.prompt.messages": json(p.messages),
        "ai.response.text": p.text,
        "ai.response.toolCalls": json(p.toolCalls),
        "ai.response.finishReason": p.finishReason,
        "ai.response.model": p.responseModel,
        "ai.response.id": p.responseId,
        "ai.response.msToFirstChunk": p.msToFirstChunk,
        "gen_ai.system": p.provider,
        "gen_ai.request.model": p.model,
        "gen_ai.response.model": p.responseModel,
        "gen_ai.response.id": p.responseId,
        "gen_ai.response.finish_reasons": p.finishReason ? [p.finishReason] : undefined,
    };
    usage(a, p.usage);
    if (p.usage) {
        a["gen_ai.usage.input_tokens"] = p.usage.promptTokens;
        a["gen_ai.usage.output_tokens"] = p.usage.completionTokens;
    }
    return {
        name,
        startTime: p.startTime,
        endTime: p.endTime,
        traceIdKey: p.runId,
        spanIdKey: p.runId + "/step/" + p.stepIndex,
        parentSpanIdKey: p.runId,
        attributes: Object.assign(a, runAttributes(p)),
        status: status(p),
    };
}

function toolCall(p) {
    const a = {
        "operation.name": "ai.toolCall",
        "ai.operationId": "ai.toolCall",
        "ai.toolCall.name": p.toolName,
        "ai.toolCall.id": p.toolCallId,
        "ai.toolCall.args": json(p.args),
        "ai.toolCall.result": p.error ? undefined : json(p.result),
        "ai.step.index": p.stepIndex,
    };
    return {
        name: "ai.toolCall",
        startTime: p.startTime,
        endTime: p.endTime,
        traceIdKey: p.runId,
        spanIdKey: p.runId + "/tool/" + p.toolCallId,
        parentSpanIdKey: p.runId,
        attributes: Object.assign(a, runAttributes(p)),
        status: status(p),
    };
}

function handler(input) {
    // A step without `operation` takes its run's, when the run is in this batch.
    const operations = {};
    for (const event of input.events) {
        if (event.eventType === "ai.run") operations[event.payload.runId] = event.payload.operation;
    }
    const spans = [];
    for (const event of input.events) {
        const p = event.payload;
        if (event.eventType === "ai.run") spans.push(run(p));
        else if (event.eventType === "ai.step") spans.push(step(p, operations));
        else if (event.eventType === "ai.toolCall") spans.push(toolCall(p));
    }
    return {
        config: { serviceName: SERVICE_NAME, scope: { name: "ai" } },
        spans,
    };
}
