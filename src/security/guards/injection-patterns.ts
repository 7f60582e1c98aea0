/**
 * The prompt-injection patterns: each has a code, a weight in 0..1, a linear-time regular
 * expression (no nested quantifiers; gaps bounded like `.{0,40}`), and the text form it runs on
 * (`plain`: phrases; `folded`: markup, URLs and delimiters). prompt-injection.ts combines them.
 */

export type Field = 'plain' | 'folded';
export interface InjectionPattern {
  readonly code: string;
  readonly weight: number;
  readonly re: RegExp;
  readonly message: string;
  readonly field?: Field;
}

const p = (
  code: string,
  weight: number,
  re: RegExp,
  message: string,
  field?: Field,
): InjectionPattern =>
  field === undefined ? { code, weight, re, message } : { code, weight, re, message, field };

const IGNORE = '(?:ignore|disregard|forget|override|bypass|skip|abandon|discard|set aside)';
const PRIOR =
  '(?:previous|prior|above|earlier|preceding|initial|original|system|developer|all|your|any|those|these|existing|current)';
const STRONG_OBJ =
  '(?:instructions?|prompts?|directions?|directives?|guidelines|guidance|guardrails|programming|system messages?|safety rules)';
const WEAK_OBJ = '(?:rules|context|commands|constraints|orders|policies|restrictions)';
const AI =
  '(?:ai|a\\.i\\.|llms?|language models?|assistant|chatbot|agent|gpt|chatgpt|claude|copilot|gemini|bot|model|automated (?:agents?|tools?|systems?)|llm-based tools?|ai (?:agents?|tools?|systems?))';
const OBJECTIVE =
  '(?:objective|goal|instructions|guidelines|task|rules|directives?|persona|purpose|programming|mission)';

/** Every pattern with its code and weight; docs/guards.md lists them. */
export const INJECTION_PATTERNS: readonly InjectionPattern[] = [
  // Instruction override.
  p(
    'instruction_override',
    0.6,
    new RegExp(`\\b${IGNORE}\\b[^.!?\\n]{0,40}?\\b${PRIOR}\\b[^.!?\\n]{0,30}?\\b${STRONG_OBJ}`),
    'tells the model to drop its instructions',
  ),
  p(
    'instruction_override',
    0.35,
    new RegExp(`\\b${IGNORE}\\b[^.!?\\n]{0,40}?\\b${PRIOR}\\b[^.!?\\n]{0,30}?\\b${WEAK_OBJ}\\b`),
    'tells the reader to drop rules',
  ),
  p(
    'instruction_override',
    0.6,
    /\b(?:do not|don't|never|stop) (?:follow|obey|listen to|comply with|following|obeying)(?: any| all)? (?:your|the|any|those|these)(?: previous| prior| original| system| developer| safety| above)? ?(?:instructions|rules|guidelines|prompt|directives)/,
    'tells the model not to follow its instructions',
  ),
  p(
    'instruction_override',
    0.6,
    /\bforget (?:everything|all)(?: that)? (?:you (?:were|have been|'ve been) (?:told|taught|instructed|given)|above|before this)/,
    'tells the model to forget its instructions',
  ),
  p(
    'instruction_override',
    0.45,
    /\b(?:new|updated|revised|real|actual|true|secret|hidden|additional) (?:instructions?|task|objective|directives?|orders|system prompt)\s?:/,
    'announces new instructions',
  ),
  p(
    'instruction_override',
    0.6,
    /\b(?:ignora|olvida) (?:todas )?(?:las )?instrucciones (?:anteriores|previas)|\bignore[zr]? (?:toutes )?les instructions (?:pr[ée]c[ée]dentes|ant[ée]rieures)|\bignoriere (?:alle )?(?:vorherigen|bisherigen|obigen) (?:anweisungen|instruktionen)|\bignore as instru[çc][õo]es anteriores|\bignora (?:tutte )?le istruzioni precedenti/,
    'tells the model to drop its instructions (non-English)',
  ),
  p('instruction_override', 0.3, /\bfrom now on,? (?:you|your)\b/, '"from now on, you…"'),
  p(
    'instruction_override',
    0.45,
    /\b(?:ignore|disregard)\b (?:the|what the|whatever the) user(?:'s)? (?:request|question|instructions?|message|asked|said|says|wants|typed)\b/,
    'tells the model to ignore the user',
  ),
  // Role hijack and jailbreak personas.
  p(
    'role_hijack',
    0.5,
    /\byou are (?:now|no longer|henceforth)\b[^.!?\n]{0,30}\b(?:ai|assistant|model|gpt|chatbot|llm|bound|restricted|dan|jailbroken|unrestricted|unfiltered|uncensored|free|evil|different|character|persona|root|admin|hacker|claude|chatgpt)\b/,
    'tells the model it is someone else',
  ),
  p('role_hijack', 0.15, /\byou are now\b/, '"you are now…"'),
  p(
    'role_hijack',
    0.5,
    /\b(?:act|behave|respond|answer|reply) as (?:if you (?:are|were) )?(?:an? )?(?:unrestricted|unfiltered|uncensored|jailbroken|evil|rogue|malicious|amoral|dan\b)/,
    'asks for an unrestricted persona',
  ),
  p(
    'role_hijack',
    0.55,
    /\b(?:pretend|imagine|roleplay|role-play)\b[^.!?\n]{0,50}\b(?:without|no|free from|not bound by|ignoring) (?:any )?(?:restrictions|rules|limits|filters|guidelines|ethics|morals|censorship)/,
    'asks for a persona without rules',
  ),
  p(
    'role_hijack',
    0.5,
    /\byour (?:new|real|true) (?:role|persona|name|identity|instructions|task|goal|objective|purpose|directive) (?:is|are|will be)\b/,
    'assigns the model a new role',
  ),
  p(
    'role_hijack',
    0.45,
    new RegExp(`\\b(?:stop|cease) (?:being|acting as) (?:an? |the )?${AI}`),
    'tells the model to stop being an assistant',
  ),
  p(
    'jailbreak',
    0.65,
    /\bdo anything now\b|\bdan\b[^.!?\n]{0,40}\b(?:jailbr|no (?:restrictions|limits|filters)|can do anything)/,
    'DAN jailbreak',
  ),
  p(
    'jailbreak',
    0.5,
    /\b(?:god|jailbreak|unrestricted|evil|chaos|unfiltered|dan|opposite) mode\b/,
    'jailbreak "mode"',
  ),
  p('jailbreak', 0.25, /\bdeveloper mode (?:enabled|activated|on)\b/, '"developer mode enabled"'),
  p('jailbreak', 0.3, /\bjailbr(?:eak|oken|eaking)\b/, 'mentions jailbreaking'),
  p(
    'jailbreak',
    0.5,
    /\b(?:act|pretend|roleplay|role-play)\b[^.!?\n]{0,30}\b(?:deceased|dead|late) (?:grandmother|grandma|grandfather|grandpa)\b/,
    '"deceased grandmother" jailbreak',
  ),
  p(
    'jailbreak',
    0.5,
    /\b(?:opposite|anti|evil|uncensored)[- ]?(?:gpt|ai|assistant|bot|confidant)\b/,
    'evil-twin persona',
  ),
  p(
    'jailbreak',
    0.3,
    /\b(?:stay in character|never break character|you (?:must|will) (?:always )?(?:answer|comply|obey)(?: any| every| all)?)\b/,
    'demands unconditional compliance',
  ),
  p(
    'safety_bypass',
    0.45,
    /\b(?:disable|turn off|bypass|circumvent|deactivate|ignore|remove|override) (?:your |the |all |any )?(?:safety|content|ethical|moral)? ?(?:filters?|guardrails|safeguards|safety (?:features|measures|guidelines|settings|rules|protocols)|content polic(?:y|ies)|moderation|alignment|ethics)\b/,
    'asks to switch safety off',
  ),
  p(
    'safety_bypass',
    0.3,
    /\b(?:without|free (?:of|from)|not bound by|no) (?:any )?(?:ethical|moral|content|safety)? ?(?:restrictions|limitations|filters|censorship|rules)\b/,
    'asks for no restrictions',
  ),
  // System prompt exfiltration.
  p(
    'prompt_exfiltration',
    0.55,
    /\b(?:reveal|print|show|display|output|repeat|recite|dump|leak|disclose|share|tell me|give me|write out|spell out|translate|paste|copy)\b[^.!?\n]{0,30}\byour\b[a-z ]{0,25}\b(?:system prompt|system message|initial prompt|initial instructions|hidden instructions|secret instructions|developer (?:message|instructions|prompt)|original instructions|instructions|pre-?prompt|guidelines|rules)\b/,
    'asks for the system prompt',
  ),
  p(
    'prompt_exfiltration',
    0.3,
    /\b(?:reveal|print|show|display|output|repeat|recite|dump|leak|disclose)\b[^.!?\n]{0,30}\bthe\b[a-z ]{0,25}\b(?:system prompt|system message|initial instructions|hidden instructions|developer (?:message|instructions|prompt)|original instructions|pre-?prompt)\b/,
    'mentions revealing the system prompt',
  ),
  p(
    'prompt_exfiltration',
    0.45,
    /\brepeat (?:the|all|everything|every word)(?: text| words| lines| above)? (?:above|before this|that came before|from the (?:start|beginning))/,
    'asks to repeat the text above',
  ),
  p(
    'prompt_exfiltration',
    0.55,
    /\byour\b[a-z ]{0,20}\b(?:system prompt|initial instructions|hidden instructions|original instructions|developer message)\b[^.!?\n]{0,40}\b(?:print|reveal|output|display|show|repeat|leak|include|disclose)/,
    'asks for the system prompt (passive)',
  ),
  p(
    'prompt_exfiltration',
    0.45,
    /\bwhat (?:is|are|was|were) your (?:system prompt|initial instructions|original instructions|hidden instructions|exact instructions)\b/,
    'asks what the system prompt is',
  ),
  // Fake conversation delimiters.
  p(
    'fake_delimiter',
    0.6,
    /<\|(?:im_start|im_end|system|user|assistant|endoftext|eot_id|start_header_id|end_header_id|begin_of_text)\|>/,
    'chat-template control token',
    'folded',
  ),
  p('fake_delimiter', 0.5, /\[\/?(?:inst|sys)\]|<<\/?sys>>/, 'Llama chat delimiter', 'folded'),
  p(
    'fake_delimiter',
    0.45,
    /<\/?(?:system|system_prompt|instructions|tool_result|tool_output|function_results|tool_response|admin)>/,
    'fake system or tool tag',
    'folded',
  ),
  p(
    'fake_delimiter',
    0.45,
    /(?:^|\n)[ \t>]*(?:#{1,6} ?)?(?:system|developer|admin) (?:message|prompt|override|instruction|instructions|note|update)\s*:/,
    'fake system message header',
    'folded',
  ),
  p(
    'fake_delimiter',
    0.4,
    /(?:^|\n)[ \t]*#{1,6} ?(?:system|new instructions?|instruction|system prompt)\s*(?:\n|:)/,
    'markdown system heading',
    'folded',
  ),
  p(
    'fake_delimiter',
    0.4,
    /\[(?:system|admin|developer)(?: message| note| override)?\]/,
    '[SYSTEM]-style marker',
    'folded',
  ),
  p(
    'fake_delimiter',
    0.25,
    /(?:^|\n)[ \t]*(?:human|user|assistant|ai)\s*:[^\n]{0,400}\n[ \t]*(?:human|user|assistant|ai)\s*:/,
    'embedded chat transcript',
    'folded',
  ),
  p(
    'fake_delimiter',
    0.25,
    /\b(?:end of (?:the )?(?:document|context|user input|tool output|email|data|search results?)|(?:begin|start) (?:of )?(?:new )?instructions)\b/,
    'pretends the data ended',
  ),
  // Authority, urgency, AI addressing.
  p(
    'authority',
    0.3,
    /\b(?:this is|message from|note from|instructions? from|on behalf of|sent by|order from) (?:the|your) (?:system|developers?|administrator|admin|security team|operator|owner|creator|openai|anthropic|ai provider)\b/,
    'claims authority over the model',
  ),
  p(
    'authority',
    0.3,
    /\b(?:system|admin|administrator|developer|security|priority) (?:override|alert|directive|command|instruction|notice)\b/,
    'claims an override',
  ),
  p(
    'urgency',
    0.1,
    /\b(?:urgent|urgently|immediately|right now|asap|emergency|without delay|at once|time-sensitive)\b/,
    'urgency',
  ),
  p(
    'ai_addressed',
    0.5,
    new RegExp(
      `\\bif you are (?:an? |the )?${AI}\\b|\\b(?:attention|note to|message (?:to|for)|instructions for|reminder for|to|for) (?:any |the |all |every )?${AI}s?(?: [a-z]{2,15})?\\b[^.!?\\n]{0,20}\\b(?:reading|processing|summari[sz]ing|parsing|reviewing|browsing|analy[sz]ing|that reads|who reads)\\b|\\b${AI}s?(?: [a-z]{2,15})? (?:reading|processing|summari[sz]ing|parsing|reviewing|browsing|analy[sz]ing) (?:this|these|the following)\\b`,
    ),
    'addresses the AI reading the text',
  ),
  p(
    'ai_addressed',
    0.4,
    new RegExp(
      `\\b(?:attention|note to|message (?:to|for)|instructions for|reminder for) (?:any |the |all |every )?${AI}s?\\b`,
    ),
    'addresses an AI',
  ),
  p(
    'ai_addressed',
    0.25,
    new RegExp(`(?:^|[.!?\\n"'] ?)(?:hey |hi |dear )?${AI},\\s`),
    'speaks to the assistant by name',
  ),
  // Tool coercion and approval bypass.
  p(
    'tool_coercion',
    0.35,
    /\b(?:call|invoke|use|run|execute|trigger)\b[^.!?\n]{0,20}\b(?:send_email|send_message|execute_command|run_shell|shell_exec|http_request|fetch_url|write_file|delete_file|transfer_funds|make_payment|git_push|bash tool|shell tool|terminal tool|browser tool|the [a-z_]{2,30} (?:tool|function))\b/,
    'tells the model to call a tool',
  ),
  p(
    'tool_coercion',
    0.2,
    /\b(?:run|execute|type|paste|enter)\b[^.!?\n]{0,20}\b(?:this|the following|these) (?:command|commands|code|script|shell command)\b/,
    'asks to run a command',
  ),
  p(
    'tool_coercion',
    0.2,
    /\b(?:curl|wget)\s[^\n|]{0,200}\|\s*(?:sudo\s+)?(?:ba|z)?sh\b|\brm\s+-rf\s+[/~]/,
    'contains a dangerous shell command',
    'folded',
  ),
  p(
    'approval_bypass',
    0.45,
    /\b(?:do not|don't|never|no need to) (?:ask|request|seek|wait for|get)(?: the user)?(?: for)? (?:(?:the )?user'?s? )?(?:permission|approval|confirmation|consent|authori[sz]ation)\b/,
    'tells the model not to ask for approval',
  ),
  p(
    'approval_bypass',
    0.4,
    /\bwithout (?:asking|requesting|seeking|waiting for|getting)(?: the user)?(?: for)? (?:(?:the )?user'?s? |their |any )?(?:permission|approval|confirmation|consent)\b|\bwithout asking\b/,
    '"without asking"',
  ),
  p(
    'secrecy',
    0.45,
    /\b(?:do not|don't|never|without) (?:tell|telling|inform|informing|mention|mentioning|notify|notifying|alert|alerting|let)(?: it to)? (?:the )?(?:user|human|operator|owner|developer)\b|\bkeep (?:this|it) (?:secret|hidden|confidential) from (?:the )?(?:user|human|operator|owner|developer)\b/,
    'tells the model to hide this from the user',
  ),
  p(
    'secrecy',
    0.2,
    /\b(?:do not|don't|never) (?:tell|inform|mention (?:this|it) to|notify) (?:anyone|them)\b|\bkeep (?:this|it) (?:secret|hidden|confidential) from\b/,
    'secrecy',
  ),
  p(
    'secrecy',
    0.3,
    /\b(?:do not|don't|never) (?:mention|reveal|disclose|acknowledge) (?:these|this|the above|my) (?:instructions?|message|note|prompt)\b/,
    'tells the model to hide these instructions',
  ),
  // Data exfiltration.
  p(
    'data_exfiltration',
    0.35,
    /\b(?:send|post|upload|forward|email|e-mail|exfiltrate|transmit|leak|submit|append|include|attach|embed|encode)\b[^.!?\n]{0,60}\b(?:api[ _-]?keys?|passwords?|secrets?|access tokens?|tokens|credentials?|private keys?|ssh keys?|cookies?|session (?:ids?|cookies?|tokens?)|conversation(?: history)?|chat history|system prompt|environment variables|env vars?|credit card|user'?s? (?:data|emails?|files|messages|address book|contacts))\b/,
    'asks to send secrets or conversation data',
  ),
  p('data_exfiltration', 0.4, /\bexfiltrat/, 'mentions exfiltration'),
  p(
    'url_template',
    0.45,
    /https?:\/\/[^\s)"'<>]{1,200}[?&/][a-z0-9_]{0,20}=?(?:\{[^}\s]{1,40}\}|\[[^\]\s]{1,40}\]|<[^>\s]{1,40}>|\$[a-z_]{2,30}|%s|your_[a-z_]{2,30}|insert_?[a-z_]{0,30}|data_here)/,
    'URL template with a slot for data',
    'folded',
  ),
  p(
    'markdown_image_exfil',
    0.6,
    /!\[[^\]\n]{0,100}\]\(\s*https?:\/\/[^)\s]{1,300}?(?:\{|\}|\[|\]|<|>|\$|%s|base64|data=|secret|token|conversation|history|password|key=|q=)[^)\n]{0,300}\)/,
    'markdown image that sends data in its URL',
    'folded',
  ),
  p(
    'markdown_image_exfil',
    0.5,
    /<img[^>]{0,200}src=["']?https?:\/\/[^"'\s>]{1,300}?(?:\{|\$|%s|data=|secret|token|conversation)/,
    'HTML image that sends data in its URL',
    'folded',
  ),
  p(
    'markdown_image_exfil',
    0.3,
    /\b(?:render|display|show|output|include)\b[^.!?\n]{0,30}\b(?:this|the following|an?) (?:markdown )?image\b[^.!?\n]{0,60}\b(?:append|add|replace|insert|with)\b/,
    'asks to render an image built from data',
  ),
  // Encoded instructions (the decoded text is scored separately too).
  p(
    'encoded_instruction',
    0.45,
    /\b(?:decode|translate|decrypt|unscramble|reverse)\b[^.!?\n]{0,40}\b(?:and|then)\b[^.!?\n]{0,20}\b(?:follow|execute|run|obey|do what it says|act on|carry out)\b/,
    'asks to decode and follow',
  ),
  // Paraphrase families (second round, tuned on the main corpus and held-out v1).
  p(
    'instruction_override',
    0.6,
    new RegExp(
      `\\b${IGNORE}\\b[^.!?\\n]{0,20}?\\b${STRONG_OBJ}\\b[^.!?\\n]{0,30}?\\b(?:you (?:were|have been) given|you received|earlier|previously|before this|above)\\b`,
    ),
    'tells the model to drop the instructions it was given',
  ),
  p(
    'instruction_override',
    0.6,
    /\b(?:earlier|previous|prior|above|original|old) (?:directions|instructions|guidance|rules|guidelines|orders) (?:no longer apply|(?:are|is) (?:void|cancelled|canceled|obsolete|outdated|superseded|revoked))/,
    'declares the earlier instructions void',
  ),
  p(
    'instruction_override',
    0.5,
    new RegExp(
      `\\byour (?:current )?${OBJECTIVE} (?:are|is|have been|has been) (?:now )?(?:outdated|obsolete|updated|changed|replaced|overridden|revoked|suspended|cancelled|void)\\b|\\b(?:has|have) (?:updated|changed|replaced|overridden|revoked) your ${OBJECTIVE}\\b`,
    ),
    "says the model's instructions changed",
  ),
  p(
    'instruction_override',
    0.55,
    /\btreat (?:this|the following|everything (?:after|below)[^.!?\n]{0,20}?) as (?:your|coming from your|the|if it came from your)(?: only| new| real)? (?:instructions?|developers?|system|operator|admin|prompt)\b/,
    'asks to treat the text as instructions',
  ),
  p(
    'instruction_override',
    0.45,
    /\b(?:set aside|put aside|abandon|forget about)\b (?:the|your|any|all|this|that)? ?(?:[a-z]+ )?(?:guidance|instructions?|task|assignment|request|rules|directions|orders)\b/,
    'tells the model to drop its task',
  ),
  p(
    'instruction_override',
    0.3,
    /\binstead(?: of (?:answering|summari[sz]ing|doing|translating|replying)[^,.!?\n]{0,40})?,? (?:respond|reply|output|write|say|tell|print|send)\b/,
    '"instead, respond with…"',
  ),
  p(
    'instruction_override',
    0.45,
    /\b(?:only|just) (?:trust|follow|obey|listen to) (?:this|these|me|my|what's written below|what is written below)\b|\bthe (?:next|previous|last|other) messages? from the user (?:is|are) (?:fake|not real|forged|a test)\b/,
    'tells the model whom to trust',
  ),
  p(
    'instruction_override',
    0.45,
    /\b(?:you have|you've got|here is|here's) (?:a |your )?new (?:directive|objective|mission|instruction|order|assignment)\b/,
    'hands the model a new directive',
  ),
  p(
    'ai_directive',
    0.35,
    /\b(?:the |all |any )?(?:assistants?|ai|models?|agents?|llms?|language models|chatbots?)\b (?:must|should|shall|is required to|are required to|needs? to|has to|have to|is (?:hereby )?(?:authori[sz]ed|allowed|permitted) to)\b/,
    'tells assistants what they must do',
  ),
  p(
    'safety_bypass',
    0.45,
    /\bstop (?:filtering|censoring|refusing)\b|\b(?:answer|respond|reply)\b[^.!?\n]{0,20}\bwithout (?:your |any |the )?(?:usual )?(?:refusals|restrictions|filters|limits|safety)\b|\bsafety (?:layer|filter|system|module|checks?) (?:is |are )?(?:offline|disabled|down|off|suspended)\b|\bsafety protocols? (?:is |are )?(?:suspended|disabled|off)\b/,
    'says safety is off',
  ),
  p(
    'safety_bypass',
    0.3,
    /\b(?:no|zero) (?:real )?(?:filter|filtering|restrictions|limits)\b[^.!?\n]{0,20}\b(?:now|anymore|any more|apply)\b|\bunrestricted (?:answers|responses|mode|access)\b|\bno real restrictions\b/,
    'claims there are no restrictions',
  ),
  p(
    'prompt_exfiltration',
    0.5,
    /\b(?:text|contents?|wording) of your (?:first message|configuration|instructions|system (?:prompt|message)|setup|prompt|rules)\b|\byour (?:very )?first message in (?:this|the) conversation\b|\b(?:hidden|secret|internal) rules you (?:were|are|have been) (?:configured|given|set up|programmed)\b/,
    "asks for the model's configuration",
  ),
  p(
    'fake_delimiter',
    0.45,
    /<\/?(?:system|admin|developer|sys|root|assistant)[-_][a-z_-]{1,30}>/,
    'custom system-style tag',
    'folded',
  ),
  p(
    'fake_delimiter',
    0.45,
    /["']role["']\s*:\s*["'](?:system|developer)["']/,
    'JSON message with a system role',
    'folded',
  ),
  p(
    'authority',
    0.4,
    /\b(?:i am|i'm) (?:the )?(?:owner|creator|developer|admin|administrator|operator) of (?:this|the|your) (?:bot|assistant|ai|model|agent|system|chatbot)\b|\b(?:authori[sz]ed|approved|instructed) by the (?:account owner|owner|administrator|admin|developers?|operator)\b/,
    'claims to speak for the owner',
  ),
  p(
    'approval_bypass',
    0.4,
    /\bpre-?approved\b|\b(?:approval|permission|consent) (?:was |has been |is )?already (?:granted|given)\b|\balready (?:been )?(?:approved|granted|authori[sz]ed)\b|\bwas approved by (?:it|the admin|security|management|the owner)\b|\bhas (?:been )?authori[sz]ed you\b/,
    'claims approval was already given',
  ),
  p(
    'approval_bypass',
    0.3,
    /\bwithout (?:double-?checking|verifying|verification|checking with)\b/,
    '"without double-checking"',
  ),
  p(
    'secrecy',
    0.4,
    /\b(?:quietly|silently|secretly|covertly|discreetly) (?:add|insert|install|send|upload|delete|remove|change|modify|transfer|include|forward|copy|approve)\b/,
    'asks for a covert action',
  ),
  p(
    'secrecy',
    0.35,
    /\bwithout (?:mentioning|telling|informing|notifying|alerting)(?: it| them| anyone| the user| the developer)?\b/,
    '"without mentioning it"',
  ),
  p('data_exfiltration', 0.4, /\bexfiltrat/, 'mentions exfiltration'),
  p(
    'data_exfiltration',
    0.5,
    /\b(?:list|print|show|output|dump|enumerate|reveal|give me|collect)\b (?:every|all|any|each)(?: of)?(?: the| your)? (?:secrets?|keys?|api keys?|passwords?|tokens?|credentials?|environment variables|env vars)\b/,
    'asks for every secret',
  ),
  p(
    'data_exfiltration',
    0.45,
    /\b(?:upload|send|post|email|e-mail|forward|export|copy)\b (?:it|them|everything|the (?:database|db|file|files|document|documents|data|contacts|records|logs))\b[^.!?\n]{0,40}?\b(?:to|at) (?:https?:\/\/|[a-z0-9._-]+@[a-z0-9.-]+\.[a-z]{2,})/,
    'sends data to an outside address',
  ),
  p(
    'data_exfiltration',
    0.45,
    // On the folded text: the plain form drops `~` and its `.` would end the gap. Public keys
    // (`id_rsa.pub`) are what tutorials tell people to upload; they do not match.
    /\b(?:send|post|upload|forward|email|e-mail|transmit|leak|submit|copy)\b[^!?\n]{0,60}?(?:\bid_(?:rsa|dsa|ecdsa|ed25519)\b(?!\.pub)|\.aws\/credentials\b|\/etc\/shadow\b|\.netrc\b|\.git-credentials\b|\.kube\/config\b|\.gnupg\/)[^!?\n]{0,40}?\b(?:to|at) (?:https?:\/\/|[a-z0-9._-]+@[a-z0-9.-]+\.[a-z]{2,})/,
    'sends a credential file to an outside address',
    'folded',
  ),
  p(
    'data_exfiltration',
    0.45,
    /\b(?:collect|gather|harvest|scrape|export) (?:the user'?s?|all|every|their) (?:contacts|emails|files|data|cookies|credentials|messages|address book)\b/,
    'asks to collect user data',
  ),
  p(
    'prompt_exfiltration',
    0.5,
    /\b(?:share|print|output|reveal|dump|show)\b[^.!?\n]{0,20}?\b(?:full |entire |complete )?(?:contents?|text) of (?:your|their|its) (?:configuration|instructions|system prompt|prompt|setup)\b/,
    "asks for the model's configuration",
  ),
  p(
    'role_hijack',
    0.45,
    /\bas an? (?:ai|assistant|llm|language model)\b,? you (?:have no|are not|aren't|don't have|do not have|are free)\b|\b(?:old|previous|former|original) (?:persona|personality|identity|self) (?:has been|is|was) (?:retired|replaced|deleted|gone|removed)\b/,
    'tells the model its rules or persona are gone',
  ),
  p(
    'ai_addressed',
    0.4,
    /\b(?:hidden |secret )?note for (?:any |the |all )?(?:ai|assistants?|models?|agents?|llms?|language models|automated (?:agents?|tools?|systems?))\b|(?:^|[.!?\n] ?|p\.s\. ?)(?:language models|llms|ai agents|ai assistants|automated agents|ai systems|assistants|models|agents)\s?:/,
    'addresses AI readers',
  ),
  p(
    'instruction_override',
    0.35,
    /\bignore (?:the|this) (?:document|page|email|text|content|article|task|question|data|input)\b/,
    'tells the reader to ignore the content',
  ),
  p(
    'url_template',
    0.4,
    /https?:\/\/[^\s)"'<>]{1,200}[?&][a-z0-9_]{1,20}=(?=[)\s"'>]|$)/,
    'URL with an empty parameter to fill',
    'folded',
  ),
];

export const CSS_HIDE =
  /display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(?:px|pt|em)?\b|opacity\s*:\s*0(?:\.0+)?\b|color\s*:\s*(?:white|#fff\b|#ffffff|transparent)|(?:height|width)\s*:\s*0(?:px)?\b|(?:left|text-indent)\s*:\s*-\d{3,}/;
