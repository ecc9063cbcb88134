/**
 * LLM-call events -> spans with OpenInference attributes (Arize Phoenix,
 * Arize AX and other OpenInference readers).
 *
 * Same events as gen-ai.js (see transforms/samples/llm-calls.events.json).
 * agent.run -> an AGENT span; llm.call -> an LLM span child of its run, with
 * llm.model_name, llm.provider / llm.system, llm.token_count.*, llm.cost.total,
 * llm.invocation_parameters, llm.finish_reason, flattened llm.input_messages /
 * llm.output_messages, and input.value / output.value with their MIME types. A
 * failed call gets ERROR status and an `exception` span event (exception.type,
 * exception.message), where Phoenix shows a span's exception.
 * Names per the OpenInference semantic conventions
 * (openinference-semantic-conventions, `SpanAttributes`).
 */
function llmCall(p) {
    const attributes = {
        "openinference.span.kind": "LLM",
        "llm.system": p.provider,
        "llm.provider": p.provider,
        "llm.model_name": p.responseModel || p.requestModel,
        "llm.invocation_parameters": JSON.stringify({
            temperature: p.temperature,
            max_tokens: p.maxTokens,
        }),
        "session.id": p.conversationId,
        "llm.cost.total": p.costUsd,
        "llm.finish_reason": p.finishReason,
    };
    if (p.usage) {
        attributes["llm.token_count.prompt"] = p.usage.inputTokens;
        attributes["llm.token_count.completion"] = p.usage.outputTokens;
        attributes["llm.token_count.total"] = p.usage.inputTokens + p.usage.outputTokens;
    }
    const messages = (p.system ? [{ role: "system", content: p.system }] : [])
        .concat(p.messages || []);
    messages.forEach((m, i) => {
        attributes["llm.input_messages." + i + ".message.role"] = m.role;
        attributes["llm.input_messages." + i + ".message.content"] = m.content;
    });
    if (messages.length) {
        attributes["input.value"] = JSON.stringify({ messages });
        attributes["input.mime_type"] = "application/json";
    }
    if (p.completion !== undefined) {
        attributes["llm.output_messages.0.message.role"] = "assistant";
        attributes["llm.output_messages.0.message.content"] = p.completion;
        attributes["output.value"] = p.completion;
        attributes["output.mime_type"] = "text/plain";
    }
    if (p.error) attributes["exception.type"] = p.error.type;
    return {
        name: (p.operation || "chat") + " " + p.requestModel,
        kind: "CLIENT",
        startTime: p.startTime,
        endTime: p.endTime,
        traceIdKey: p.runId ? undefined : p.callId,
        spanIdKey: p.callId,
        parentSpanIdKey: p.runId,
        attributes,
        status: p.error ? { code: "ERROR", message: p.error.message } : { code: "OK" },
        events: p.error
            ? [{
                name: "exception",
                time: p.endTime,
                attributes: { "exception.type": p.error.type, "exception.message": p.error.message },
            }]
            : undefined,
    };
}

function agentRun(p) {
    return {
        name: p.agentName,
        kind: "INTERNAL",
        startTime: p.startTime,
        endTime: p.endTime,
        traceIdKey: p.runId,
        spanIdKey: p.runId,
        attributes: {
            "openinference.span.kind": "AGENT",
            "agent.name": p.agentName,
            "session.id": p.conversationId,
            "input.value": p.input,
            "input.mime_type": p.input === undefined ? undefined : "text/plain",
            "output.value": p.output,
            "output.mime_type": p.output === undefined ? undefined : "text/plain",
        },
        status: { code: "OK" },
    };
}

function handler(input) {
    const spans = [];
    for (const event of input.events) {
        if (event.eventType === "llm.call") spans.push(llmCall(event.payload));
        else if (event.eventType === "agent.run") spans.push(agentRun(event.payload));
    }
    return {
        config: {
            serviceName: "llm.gateway",
            scope: { name: "streamsink.openinference", version: "1.0.0" },
            resourceAttributes: { "openinference.project.name": "llm-gateway" },
        },
        spans,
    };
}
