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
 * (JSON strings following the semconv message schema), on the LLM spans and on
 * the agent span (its input and output: MLflow shows the root span's as the
 * trace's Request / Response). The same content also goes to the older
 * `gen_ai.prompt` / `gen_ai.completion` (2Signal reads them as a span's input
 * and output): on an LLM span JSON `[{role, content}]` lists, on the agent span
 * the plain text. Cost has no semconv attribute yet: it goes to
 * `gen_ai.usage.cost` (USD), a widely read custom name.
 */
const EMIT_DEPRECATED_GEN_AI_SYSTEM = false; // true: also set gen_ai.system (pre-1.37)
const EMIT_GEN_AI_PROMPT_COMPLETION = true; // false: drop gen_ai.prompt / gen_ai.completion

function textParts(text) {
    return [{ type: "text", content: text }];
}

function inputMessages(messages) {
    return JSON.stringify(messages.map((m) => ({ role: m.role, parts: textParts(m.content) })));
}

function outputMessages(text, finishReason) {
    return JSON.stringify([
        { role: "assistant", parts: textParts(text), finish_reason: finishReason || "stop" },
    ]);
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
        "gen_ai.input.messages": p.messages ? inputMessages(p.messages) : undefined,
        "gen_ai.output.messages": p.completion !== undefined
            ? outputMessages(p.completion, p.finishReason)
            : undefined,
        "error.type": p.error ? p.error.type : undefined,
    };
    if (EMIT_DEPRECATED_GEN_AI_SYSTEM) attributes["gen_ai.system"] = p.provider;
    if (EMIT_GEN_AI_PROMPT_COMPLETION) {
        const prompt = (p.system ? [{ role: "system", content: p.system }] : [])
            .concat(p.messages || [])
            .map((m) => ({ role: m.role, content: m.content }));
        if (prompt.length) attributes["gen_ai.prompt"] = JSON.stringify(prompt);
        if (p.completion !== undefined) {
            attributes["gen_ai.completion"] = JSON.stringify([
                { role: "assistant", content: p.completion },
            ]);
        }
    }
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
            "gen_ai.input.messages": p.input !== undefined
                ? inputMessages([{ role: "user", content: p.input }])
                : undefined,
            "gen_ai.output.messages": p.output !== undefined ? outputMessages(p.output) : undefined,
            "gen_ai.prompt": EMIT_GEN_AI_PROMPT_COMPLETION ? p.input : undefined,
            "gen_ai.completion": EMIT_GEN_AI_PROMPT_COMPLETION ? p.output : undefined,
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
