/**
 * LLM-call events -> spans with the OpenTelemetry GenAI semantic conventions
 * (gen_ai.*, semconv 1.37+: `gen_ai.provider.name` replaces `gen_ai.system`).
 *
 * Events (see transforms/samples/llm-calls.events.json):
 *   agent.run {runId, agentName, conversationId?, provider?, input?, output?,
 *              startTime, endTime}
 *   llm.call  {callId, runId?, conversationId?, provider, operation?, requestModel,
 *              responseModel?, responseId?, finishReason?, temperature?, maxTokens?,
 *              system?, messages?: [{role, content}], completion?,
 *              usage?: {inputTokens, outputTokens}, costUsd?,
 *              error?: {type, message}, startTime, endTime}
 *
 * One trace per agent run (traceIdKey = runId); each llm.call is a child of its
 * run. Prompt and completion go to gen_ai.input.messages / gen_ai.output.messages
 * (JSON strings following the semconv message schema). Cost has no semconv
 * attribute yet: it goes to `gen_ai.usage.cost` (USD), a widely read custom name.
 */
const EMIT_DEPRECATED_GEN_AI_SYSTEM = false; // true: also set gen_ai.system (pre-1.37)

function textParts(text) {
    return [{ type: "text", content: text }];
}

function llmCall(p) {
    const operation = p.operation || "chat";
    const attributes = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": p.provider,
        "gen_ai.request.model": p.requestModel,
        "gen_ai.response.model": p.responseModel,
        "gen_ai.response.id": p.responseId,
        "gen_ai.response.finish_reasons": p.finishReason ? [p.finishReason] : undefined,
        "gen_ai.request.temperature": p.temperature,
        "gen_ai.request.max_tokens": p.maxTokens,
        "gen_ai.conversation.id": p.conversationId,
        "gen_ai.usage.input_tokens": p.usage && p.usage.inputTokens,
        "gen_ai.usage.output_tokens": p.usage && p.usage.outputTokens,
        "gen_ai.usage.cost": p.costUsd,
        "gen_ai.system_instructions": p.system ? JSON.stringify(textParts(p.system)) : undefined,
        "gen_ai.input.messages": p.messages
            ? JSON.stringify(p.messages.map((m) => ({ role: m.role, parts: textParts(m.content) })))
            : undefined,
        "gen_ai.output.messages": p.completion !== undefined
            ? JSON.stringify([{
                role: "assistant",
                parts: textParts(p.completion),
                finish_reason: p.finishReason || "stop",
            }])
            : undefined,
        "error.type": p.error ? p.error.type : undefined,
    };
    if (EMIT_DEPRECATED_GEN_AI_SYSTEM) attributes["gen_ai.system"] = p.provider;
    return {
        name: operation + " " + p.requestModel,
        kind: "CLIENT",
        startTime: p.startTime,
        endTime: p.endTime,
        traceIdKey: p.runId ? undefined : p.callId, // with a run: inherit the run's trace
        spanIdKey: p.callId,
        parentSpanIdKey: p.runId,
        attributes,
        status: p.error ? { code: "ERROR", message: p.error.message } : undefined,
    };
}

function agentRun(p) {
    return {
        name: "invoke_agent " + p.agentName,
        kind: "INTERNAL",
        startTime: p.startTime,
        endTime: p.endTime,
        traceIdKey: p.runId,
        spanIdKey: p.runId,
        attributes: {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.provider.name": p.provider,
            "gen_ai.agent.name": p.agentName,
            "gen_ai.conversation.id": p.conversationId,
        },
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
            scope: { name: "streamsink.gen-ai", version: "1.0.0" },
        },
        spans,
    };
}
