"""Offline agents for the sample "idea validation" workflow.

Every agent is a plain function ``agent(ctx) -> str`` that turns the idea text, and
the outputs of earlier phases, into a markdown report. Nothing is canned and nothing
calls a model: the agents use deterministic text analysis only, namely

* stopword-filtered term frequencies and bigrams (keywords and key phrases),
* pattern-based audience extraction ("for X", "where X can", "X who ...", role nouns),
* feature extraction from verb phrases and comma/"and" lists,
* vocabulary scoring for the product category and the domain,
* a trigger-phrase table for risks, each quoted back with the phrase that fired it.

Agents are pure: the same context always yields the same markdown (no clock, no
randomness, no network). When a reviewer asked for a revision, the output starts with
a ``## Revision notes`` section and the requested changes are applied where a rule
understands them ("focus on X", "audience: X", "more detail on X", "remove X",
"shorter").
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from mdsessions import AgentContext

__all__ = [
    "AGENTS",
    "PHASE_AGENTS",
    "PHASE_NAMES",
    "business_planning",
    "competitor_analysis",
    "concept_expansion",
    "final_synthesis",
    "market_intelligence",
    "niche_selection",
    "product_strategy",
    "risk_assessment",
]

_T = TypeVar("_T")

PHASE_NAMES: dict[int, str] = {
    1: "Concept Expansion",
    2: "Market Research",
    3: "Niche Selection",
    4: "Product Strategy",
    5: "Business Planning",
    6: "Validation",
    7: "Final Synthesis",
}
"""Display names of the seven phases of the idea-validation workflow."""

PHASE_AGENTS: dict[int, tuple[str, ...]] = {
    1: ("concept_expansion",),
    2: ("market_intelligence", "competitor_analysis"),
    3: ("niche_selection",),
    4: ("product_strategy",),
    5: ("business_planning",),
    6: ("risk_assessment",),
    7: ("final_synthesis",),
}
"""Agent names run by each phase, in execution order."""

_MAX_ANALYSED_CHARS = 12_000
_MAX_WORD_CHARS = 40
_MAX_OUTPUT_BYTES = 4_000
_MIN_OUTPUT_BYTES = 1_024

# --------------------------------------------------------------------------- vocabulary

_STOPWORDS = frozenset(
    """
    a about above across after again against all almost along also although always am
    among an and another any anyone anything are aren't around as at away back be because
    become been before being below between both but by can can't cannot could couldn't did
    didn't do does doesn't doing don't done down during each either else enough etc even
    ever every everyone everything few for from further get gets getting give given gives
    go goes going got had has hasn't have haven't having he her here hers herself him
    himself his how however i i'd i'll i'm i've if in instead into is isn't it it's its
    itself just keep keeps kind least less let lets like lot lots made many may me might
    mine more most much must my myself near need needs neither never new next no nobody
    none nor not nothing now of off often on once one only onto or other others otherwise
    our ours ourselves out over own per perhaps please quite rather really same several
    shall she should so some someone something sometimes still such than that that's the
    their theirs them themselves then there there's these they they're thing things this
    those though through thus to too toward towards two three four five six seven eight
    nine ten under until up upon us very via was wasn't way we we'd we'll we're we've well
    were what what's whatever when where whether which while who whom whose why will with
    within without won't would wouldn't yet end you you'd you'll you're you've your yours
    yourself yourselves able actually already based certain e.g i.e eg ie simply want
    wants wanted using use used uses lets allow allows allowing
    """.split()
)

_GENERIC = frozenset(
    """
    app apps application applications tool tools platform platforms service services
    product products startup startups idea ideas user users people person solution
    solutions system systems feature features way ways time times day days help helps
    make makes create creates see sees new good great best better easy simple
    """.split()
)

_DETERMINERS = frozenset(
    "a an the this these those each every my your our their its his her some any no own "
    "all both one two three four five six seven eight nine ten many several".split()
)

_PERSON = frozenset(
    """
    user member student teacher tutor developer engineer team patient freelancer contractor
    consultant hiker runner climber cyclist cook chef baker parent family friend person
    customer client buyer seller shopper host guest owner manager founder agency company
    business startup creator writer author designer researcher scientist doctor nurse
    clinician therapist psychologist coach trainer athlete player gamer musician artist
    traveller traveler tourist driver courier neighbour neighbor volunteer ranger club shop
    store retailer restaurant clinic school university landlord tenant renter homeowner
    farmer employee employer recruiter candidate accountant lawyer marketer admin
    administrator moderator organizer organiser reader learner beginner professional senior
    kid child teen teenager woman man mentor mentee investor visitor operator maintainer
    contributor giver receiver community household homeowner gardener maker merchant
    vendor supplier practitioner caregiver carer subscriber fan follower listener viewer
    """.split()
)

_CONTEXTUAL_PERSON = frozenset("platform marketplace organisation organization brand".split())

_NON_PERSON = frozenset(
    """
    numbers others answers layers papers containers servers filters headers orders letters
    computers markers stickers trackers reminders borders folders matters chapters
    parameters corners centers centres offers powers waters hours errors colors colours
    factors sensors monitors meters liters litres rivers sliders burgers dinners peppers
    leftovers providers competitors processors vectors sectors generators calculators
    connectors selectors validators indoors outdoors corridors mirrors interiors
    playlists checklists wishlists waitlists shortlists towers flowers banners posters
    covers triggers counters timers routers browsers controllers editors printers
    characters registers transfers barriers boulders ledgers quarters tutorials answers
    """.split()
)

_PRODUCT_NOUNS = frozenset(
    "app apps tool platform site website service api marketplace product system bot "
    "extension plugin dashboard it they you we users".split()
)

_VERBS = frozenset(
    """
    track compare see view earn create join search find book schedule pay leave review rate
    convert export import generate support aggregate normalize normalise provide share swap
    trade send receive manage post publish follow browse filter sort scan upload photograph
    invite verify confirm add edit sync notify alert remind report match connect message
    chat comment vote sell buy order suggest recommend analyze analyse monitor log record
    integrate call reconcile automate process collect store save download stream translate
    summarize summarise classify detect predict visualize visualise pin subscribe customize
    customise configure deploy ask request answer rank score award unlock discover explore
    learn practice teach split bill charge refund transfer rent cancel approve sign print
    render highlight merge compress encrypt backup restore gather exchange register check
    measure calculate estimate forecast handle offer organize organise coordinate assign
    invoice plan hire mark tag submit flag moderate curate set
    """.split()
)

_IRREGULAR_PAST = {
    "paid": "pay",
    "sent": "send",
    "built": "build",
    "sold": "sell",
    "bought": "buy",
    "found": "find",
    "made": "make",
    "kept": "keep",
    "seen": "see",
    "shown": "show",
    "written": "write",
    "taken": "take",
    "given": "give",
    "done": "do",
}

_ADJECTIVES = frozenset(
    "short long quick simple detailed live daily weekly monthly free clean custom personal "
    "private public local anonymous beautiful small large big fresh recent new old".split()
)

_META_VERBS = frozenset(
    "want need develop build make start launch try hope aim intend think believe be have "
    "go do use".split()
)

_CONTEXT_PREV = frozenset(
    "for where connecting connects connect helping helps help lets letting allowing allows "
    "enabling enables empowering empowers serving serves between among".split()
)
_CONTEXT_NEXT = frozenset("who can could will should get want need earn post share".split())

_PHRASE_STOP = frozenset(
    "where which while whereas because so that who whom whose if when unless although "
    "though but instead".split()
)

_FEATURE_NOUNS = frozenset(
    """
    dashboard alerts alert notifications search export sync integration reports report
    caching failover highlighting themes badges leaderboard leaderboards map maps chat
    calendar reminders analytics api webhooks endpoint conversion numbering rankings
    profiles feed timeline editor templates filters matching payments checkout reviews
    ratings messaging booking streaks groups challenges history insights
    """.split()
)

_CATEGORY_VOCAB: dict[str, dict[str, int]] = {
    "Mobile app": {
        "app": 2,
        "mobile": 3,
        "ios": 3,
        "android": 3,
        "phone": 2,
        "smartphone": 3,
        "notification": 1,
        "scan": 1,
        "camera": 1,
        "photo": 1,
        "daily": 1,
        "streak": 1,
        "habit": 1,
        "on-the-go": 2,
        "wearable": 2,
    },
    "CLI tool": {
        "command-line": 4,
        "cli": 4,
        "terminal": 3,
        "shell": 2,
        "command": 2,
        "batch": 1,
        "script": 1,
        "file": 1,
        "markdown": 1,
        "pipeline": 1,
    },
    "API service": {
        "api": 4,
        "endpoint": 3,
        "sdk": 3,
        "webhook": 3,
        "developer": 2,
        "integrate": 2,
        "integration": 2,
        "rest": 1,
        "json": 2,
        "provider": 1,
        "graphql": 3,
    },
    "Marketplace": {
        "marketplace": 5,
        "connecting": 2,
        "buyer": 2,
        "seller": 2,
        "book": 1,
        "booking": 2,
        "commission": 3,
        "listing": 2,
        "host": 1,
        "pay": 1,
        "review": 1,
        "two-sided": 3,
    },
    "Community platform": {
        "community": 3,
        "member": 2,
        "leaderboard": 2,
        "social": 2,
        "friend": 1,
        "group": 1,
        "forum": 2,
        "reputation": 2,
        "share": 1,
        "post": 1,
        "follow": 1,
        "club": 1,
    },
    "B2B SaaS": {
        "team": 2,
        "company": 2,
        "business": 2,
        "agency": 2,
        "dashboard": 2,
        "b2b": 4,
        "saas": 4,
        "invoice": 2,
        "compliance": 2,
        "enterprise": 3,
        "workflow": 1,
        "client": 1,
        "accountant": 1,
        "finance": 1,
        "seat": 1,
    },
    "Web app": {
        "web": 3,
        "website": 3,
        "site": 2,
        "browser": 3,
        "online": 1,
        "webapp": 3,
        "platform": 1,
        "portal": 2,
    },
}

_DOMAIN_VOCAB: dict[str, frozenset[str]] = {
    "Fitness": frozenset("gym workout exercise fitness training rep runner athlete".split()),
    "Health & wellbeing": frozenset(
        "health patient psychologist therapy therapist wellness wellbeing mental medical "
        "clinic happiness healing doctor".split()
    ),
    "Finance & payments": frozenset(
        "invoice invoicing payment pay paid billing tax vat currency finance accountant "
        "bank money".split()
    ),
    "Education": frozenset("student teacher tutor tutoring learning course lesson school".split()),
    "Food & cooking": frozenset(
        "recipe cook cooking ingredient meal fridge pantry kitchen dish leftover food".split()
    ),
    "Outdoors & travel": frozenset(
        "trail hiking hiker outdoor route gps park travel hike mountain".split()
    ),
    "Developer tools": frozenset(
        "markdown code developer api cli command-line syntax sdk webhook endpoint".split()
    ),
    "Productivity & habits": frozenset(
        "habit streak task productivity accountability reminder progress".split()
    ),
    "Social & community": frozenset(
        "community friend social member group leaderboard reputation".split()
    ),
    "Weather & data": frozenset("weather forecast data provider".split()),
}

_PAIN_RE = re.compile(
    r"\b(?:without|instead of|hard|difficult|struggl\w*|missing|manual\w*|waste\w*|"
    r"half-used|lack\w*|can't|cannot|no way|expensive|slow|tedious|time-consuming|"
    r"error-prone|frustrat\w*|pain\w*|problem\w*|forget\w*|lose|lost|ugly|end up|"
    r"reinvent\w*|hard part)\b",
    re.IGNORECASE,
)
_MONEY_RE = re.compile(
    r"\b(?:pric\w*|revenue|money|monetis\w*|monetiz\w*|paid plan|premium|free tier|"
    r"subscription\w*|fees?|commission\w*|sponsor\w*|advertis\w*|ads|usage-based|"
    r"freemium|per (?:seat|month|invoice|call|user|year))\b",
    re.IGNORECASE,
)
_GEO_RE = re.compile(
    r"\b(?:city|cities|country|countries|region|regions|local|nearby|neighbou?rs?|"
    r"neighbou?rhoods?|EU|UK|US|USA|Europe|Asia|Africa|America|worldwide|global|"
    r"international)\b"
)

_RiskRule = tuple[str, str, "re.Pattern[str]", str, str, str]
# (name, severity, trigger, mitigation, early-warning signal, validation experiment)
_RISK_RULES: tuple[_RiskRule, ...] = (
    (
        "Sensitive health data and regulation",
        "High",
        re.compile(
            r"\b(?:health\w*|patients?|medical|therap\w*|psycholog\w*|clinic\w*|"
            r"mental|diagnos\w*)\b",
            re.I,
        ),
        "Treat data as special-category (GDPR/HIPAA); minimise what is stored; get "
        "a compliance review before launch.",
        "Practitioners ask where data is stored or refuse to onboard patients.",
        "Walk 3 practitioners through the consent and data flow; count objections.",
    ),
    (
        "Two-sided cold start",
        "High",
        re.compile(r"\b(?:marketplace|connecting|buyers|sellers|two-sided)\b", re.I),
        "Seed one side by hand in a single niche or city before opening the other side.",
        "Searches return empty results; supply churns before the first booking.",
        "Concierge test: match 10 pairs manually and measure repeat use.",
    ),
    (
        "Payment handling, fraud and disputes",
        "High",
        re.compile(
            r"\b(?:pay|pays|paid(?!\s+(?:plan|tier|version|account))|payments?|"
            r"billing|checkout|invoic\w*|currency)\b",
            re.I,
        ),
        "Use a PCI-compliant payment processor; never store card data; budget for "
        "chargebacks and refunds.",
        "Dispute or refund rate above 1% of transactions.",
        "Run 20 real transactions through a hosted checkout and log every failure.",
    ),
    (
        "Upstream provider dependency",
        "High",
        re.compile(
            r"\b(?:(?:api|data|weather|upstream|third[- ]party)\s+providers?|"
            r"aggregat\w*|scrap(?:e|es|ing))\b",
            re.I,
        ),
        "Check each provider's terms for resale/caching; keep a fallback provider and a cache.",
        "A provider changes pricing, rate limits or terms.",
        "Read the terms of the top 3 providers and price 1M calls at their rates.",
    ),
    (
        "Tax and legal correctness",
        "High",
        re.compile(r"\b(?:tax\w*|vat|complian\w*|legal\w*|regulat\w*)\b", re.I),
        "Start with few jurisdictions, version the rules and have an expert sign off.",
        "A customer reports a rejected document or a wrong rate.",
        "Have an accountant check 20 generated documents from 2 jurisdictions.",
    ),
    (
        "Real-time infrastructure cost",
        "Medium",
        re.compile(r"\b(?:real[- ]?time|live|instant\w*|streaming|push)\b", re.I),
        "Start with periodic refresh; add push only where latency is proven to matter.",
        "Users complain about stale data, or infrastructure cost grows faster than users.",
        "Compare engagement with 5-minute refresh against instant updates in a pilot.",
    ),
    (
        "Abuse and moderation under anonymity",
        "Medium",
        re.compile(r"\b(?:anonym\w*|without revealing|pseudonym\w*|identity)\b", re.I),
        "Rate-limit new handles, add reporting and a moderation queue from day one.",
        "Reports of harassment or fake entries per 100 active users.",
        "Seed a closed beta and count moderation actions needed per week.",
    ),
    (
        "AI output quality and cost",
        "Medium",
        re.compile(
            r"\b(?:ai|artificial intelligence|machine learning|llms?|gpt\w*|"
            r"chatbots?|neural)\b",
            re.I,
        ),
        "Keep a human in the loop for critical output and cap per-user inference cost.",
        "Share of outputs users edit or reject.",
        "Compare model output with a manual baseline on 30 real inputs.",
    ),
    (
        "Location privacy and safety",
        "Medium",
        re.compile(r"\b(?:gps|locations?|nearby|geo\w*|maps?)\b", re.I),
        "Round or delay shared locations; never expose home addresses.",
        "Users disable location or report feeling tracked.",
        "Ask 10 target users which location detail they would share publicly.",
    ),
    (
        "Data of minors",
        "Medium",
        re.compile(r"\b(?:children|kids?|minors?|teens?|teenagers?|students?)\b", re.I),
        "Check whether users can be under 16; if so add parental consent (COPPA/GDPR-K).",
        "Sign-ups with school e-mail addresses or ages under 16.",
        "Survey the first 50 sign-ups for age bracket.",
    ),
    (
        "Fake or manipulated reviews and reputation",
        "Medium",
        re.compile(r"\b(?:reviews?|ratings?|rate|reputation|verify|confirm\w*|rankings?)\b", re.I),
        "Tie ratings to verified activity and weight new accounts less.",
        "Bursts of ratings from new accounts.",
        "Audit the first 100 ratings for duplicates and self-promotion.",
    ),
    (
        "User-generated content moderation and rights",
        "Medium",
        re.compile(r"\b(?:post\w*|upload\w*|photos?|photograph\w*|publish\w*|share\w*)\b", re.I),
        "Publish content rules, add reporting, and require rights to uploaded media.",
        "Share of posts reported or removed.",
        "Moderate the first 200 posts by hand and record the time spent.",
    ),
    (
        "Liability for outdated safety information",
        "Medium",
        re.compile(r"\b(?:conditions|safety|closures?|warnings?|emergenc\w*|hazards?)\b", re.I),
        "Timestamp every item, expire old ones and add a clear disclaimer.",
        "Complaints that displayed information was wrong or stale.",
        "Check 30 reports against ground truth after 48 hours.",
    ),
    (
        "Engagement decay after novelty",
        "Low",
        re.compile(r"\b(?:leaderboards?|streaks?|badges?|challenges?|gamif\w*)\b", re.I),
        "Design for week-4 retention, not day-1 excitement; rotate goals.",
        "Weekly active users drop below 30% of sign-ups after a month.",
        "Track a 4-week cohort of 30 beta users.",
    ),
    (
        "Output fidelity across inputs",
        "Low",
        re.compile(r"\b(?:convert\w*|pdfs?|formats?|themes?|render\w*)\b", re.I),
        "Build a corpus of real-world inputs and snapshot-test the output.",
        "Bug reports about broken layouts.",
        "Run 50 real user files through the converter and grade the output.",
    ),
    (
        "Free users may not convert",
        "Medium",
        re.compile(r"\b(?:free|freemium|free tier)\b", re.I),
        "Define the paid trigger up front and measure it from the first cohort.",
        "Free-to-paid conversion below 2% after 60 days.",
        "Show the paid tier to beta users and count upgrade clicks.",
    ),
    (
        "Local density needed before network effects",
        "Medium",
        re.compile(r"\b(?:one city|local\w*|neighbou?r\w*|nearby)\b", re.I),
        "Launch in one dense area and measure coverage before expanding.",
        "Share of sessions where nothing relevant is nearby.",
        "Recruit 50 users in one area and measure how many find a match in week 1.",
    ),
)

_SEVERITY_ORDER = {"High": 0, "Medium": 1, "Low": 2}

_CATEGORY_COMPETITORS: dict[str, tuple[tuple[str, str], ...]] = {
    "Mobile app": (
        ("General-purpose apps in the same domain", "users already keep one app for this"),
        ("Social feeds and group chats", "people share the same information informally"),
    ),
    "CLI tool": (
        ("Established open-source converters and scripts", "free and already in pipelines"),
        ("Desktop editors with an export button", "zero setup for occasional use"),
    ),
    "API service": (
        ("Integrating each upstream provider directly", "no extra vendor in the path"),
        ("Existing aggregator or all-in-one APIs", "one contract already covers it"),
    ),
    "Marketplace": (
        ("Horizontal marketplaces and classifieds", "large existing supply and demand"),
        ("Word of mouth and direct contact", "no fees for either side"),
    ),
    "Community platform": (
        ("General social networks and forums", "the audience already gathers there"),
        ("Group chats and mailing lists", "free, familiar and private"),
    ),
    "B2B SaaS": (
        ("All-in-one suites with the feature bundled", "already bought and approved"),
        ("Spreadsheets and in-house scripts", "flexible and free at small scale"),
    ),
    "Web app": (
        ("Generic web tools and templates", "cheap and good enough for many"),
        ("Manual processes in documents and e-mail", "no learning curve"),
    ),
}

_DOMAIN_COMPETITORS: dict[str, str] = {
    "Fitness": "Workout trackers with social features",
    "Health & wellbeing": "Video-call and messaging tools used for group sessions",
    "Finance & payments": "Accounting and invoicing software",
    "Education": "Tutoring agencies and course platforms",
    "Food & cooking": "Recipe websites and recipe-sharing apps",
    "Outdoors & travel": "Mapping and hiking apps with user reports",
    "Developer tools": "Documentation and build toolchains",
    "Productivity & habits": "Habit trackers and to-do apps",
    "Social & community": "Interest groups on large social networks",
    "Weather & data": "Single-provider data APIs",
}

_CHANNELS: dict[str, str] = {
    "developer": "GitHub README, 'Show HN' post, technical blog tutorials",
    "engineer": "GitHub README, engineering newsletters, conference talks",
    "team": "LinkedIn outreach, integration directories, partner referrals",
    "company": "LinkedIn outreach, industry newsletters, partner integrations",
    "agency": "Agency networks, LinkedIn outreach, referral deals",
    "platform": "Partner integrations, developer relations, direct sales to product leads",
    "business": "Industry associations, LinkedIn outreach, accountants as referrers",
    "freelancer": "Freelancer communities and newsletters, co-working spaces",
    "student": "Campus groups, study forums, parent newsletters",
    "teacher": "Teacher networks, school newsletters",
    "tutor": "Tutoring directories, teacher networks",
    "patient": "The practitioner's existing client list and referrals",
    "hiker": "Hiking clubs, trail forums, outdoor shops' newsletters",
    "runner": "Running clubs, race events, trail-running groups",
    "club": "Club newsletters and organisers",
    "ranger": "Park authorities and volunteer programmes",
    "cook": "Cooking communities, food creators on short-video apps, local food groups",
    "member": "Referral invites from existing members, partner communities",
    "user": "App-store search, referral invites, social sharing",
    "friend": "Invite links and group challenges",
    "parent": "School groups, parenting forums",
    "shop": "Direct sales visits, regional trade associations",
    "accountant": "Accounting firms' partner programmes, professional bodies",
    "psychologist": "Professional associations, supervision groups, practitioner newsletters",
    "company_default": "Content marketing around the core keywords",
}

_ENTRY_POINTS: dict[str, str] = {
    "Mobile app": "Install from the app store and finish onboarding in under a minute",
    "CLI tool": "Install with one command and run it on a sample file",
    "API service": "Get an API key and make a first call against the sandbox",
    "Marketplace": "Search listings without an account",
    "Community platform": "Browse recent posts without an account",
    "B2B SaaS": "Start a trial workspace and import existing data",
    "Web app": "Sign up on the website",
}

_METRICS: dict[str, tuple[tuple[str, str], ...]] = {
    "Mobile app": (("Day-30 retention", ">= 20%"), ("Weekly active / monthly active", ">= 40%")),
    "CLI tool": (("Repeat runs per user per week", ">= 3"), ("Install-to-first-success", "> 70%")),
    "API service": (("Time to first successful call", "< 15 min"), ("Paying accounts", "10")),
    "Marketplace": (("Search-to-booking rate", ">= 5%"), ("Repeat transactions", ">= 30%")),
    "Community platform": (("Contributors / readers", ">= 10%"), ("Week-4 retention", ">= 25%")),
    "B2B SaaS": (("Weekly active teams", ">= 60%"), ("Trial-to-paid", ">= 15%")),
    "Web app": (("Activation within first session", ">= 40%"), ("Week-4 retention", ">= 20%")),
}

_PRICING: dict[str, tuple[str, tuple[tuple[str, str, str], ...]]] = {
    "Mobile app": (
        "Freemium subscription",
        (
            ("Free", "0", "core loop"),
            ("Premium", "4.99 / month", "advanced features"),
            ("Family", "7.99 / month", "shared household"),
        ),
    ),
    "CLI tool": (
        "Open core with paid extras",
        (
            ("Open source", "0", "core conversion"),
            ("Pro licence", "49 one-off", "themes, batch"),
            ("Team", "15 / user / month", "shared config, CI"),
        ),
    ),
    "API service": (
        "Usage-based API pricing",
        (
            ("Developer", "0 up to 1,000 calls", "sandbox"),
            ("Growth", "0.002 / call", "SLA 99.5%"),
            ("Scale", "from 499 / month", "volume discount, SLA 99.9%"),
        ),
    ),
    "Marketplace": (
        "Commission on transactions",
        (
            ("Buyer", "0", "search and book"),
            ("Seller", "12% per transaction", "payouts"),
            ("Featured seller", "19 / month", "placement"),
        ),
    ),
    "Community platform": (
        "Free community, paid organisations",
        (
            ("Member", "0", "read and post"),
            ("Supporter", "3 / month", "extras"),
            ("Organisation", "29 / month", "official pages, alerts"),
        ),
    ),
    "B2B SaaS": (
        "Per-seat subscription",
        (
            ("Starter", "0 for 1 seat", "trial"),
            ("Team", "12 / seat / month", "collaboration"),
            ("Business", "25 / seat / month", "SSO, audit log"),
        ),
    ),
    "Web app": (
        "Freemium subscription",
        (
            ("Free", "0", "core loop"),
            ("Plus", "6 / month", "advanced features"),
            ("Team", "10 / user / month", "sharing"),
        ),
    ),
}

_PRICING_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("Usage-based pricing", re.compile(r"usage-based|per (?:invoice|call|request|use)", re.I)),
    ("Commission on transactions", re.compile(r"commission|take rate|pay through", re.I)),
    ("Sponsorship and advertising", re.compile(r"sponsor\w*|advertis\w*|\bads\b", re.I)),
    ("Freemium", re.compile(r"freemium|premium|free tier|free for", re.I)),
    ("Subscription", re.compile(r"subscription|per month|paid plan|monthly", re.I)),
    ("One-off licence", re.compile(r"one-off|one-time|licen[cs]e", re.I)),
)

_TOKEN_RE = re.compile(r"[^\W_](?:[\w'-]*[^\W_])?")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE_SPLIT_RE = re.compile(r"[,;:()\[\]{}\"!?]|\s[-\u2013\u2014]+\s|[\u2013\u2014]|\.\s*$")
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_HEADING_TITLE_RE = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")

# --------------------------------------------------------------------------- text helpers


def _clean(text: str) -> str:
    """Strip control characters and markdown syntax, keeping the words."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2019", "'").replace("\u2018", "'")
    text = _CONTROL_RE.sub("", text)
    text = re.sub(r"```.*?```", " ", text, flags=re.DOTALL)
    text = re.sub(r"!?\[([^\]\n]*)\]\([^)\n]*\)", r"\1", text)
    text = re.sub(r"https?://\S+", " ", text)
    text = re.sub(r"^\s{0,3}(?:#{1,6}|[-*+>]|\d+[.)])\s+", "", text, flags=re.MULTILINE)
    text = re.sub(r"[*`~]+|(?<!\w)_+|_+(?!\w)", "", text)
    return text


def _inline(text: str, limit: int = 160) -> str:
    """Collapse whitespace, make table-safe and truncate to ``limit`` characters."""
    text = " ".join(text.split()).replace("|", "/")
    text = text.strip()
    if len(text) > limit:
        cut = text[: limit - 1].rsplit(" ", 1)[0] if " " in text[: limit - 1] else text[: limit - 1]
        text = cut.rstrip(" ,;:") + "\u2026"
    return text


def _q(text: str, limit: int = 120) -> str:
    """Quote a phrase from the input for markdown output."""
    return f"\u201c{_inline(text, limit)}\u201d"


def _an(noun: str) -> str:
    """Lower-case ``noun`` (keeping acronyms) and prefix it with "a" or "an"."""
    noun = " ".join(w if w.isupper() or w == "SaaS" else w.lower() for w in noun.split())
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _words(text: str) -> list[str]:
    """Lower-cased word tokens, possessives removed."""
    out = []
    for tok in _TOKEN_RE.findall(text):
        if len(tok) > _MAX_WORD_CHARS:
            continue
        low = tok.lower()
        if low.endswith("'s"):
            low = low[:-2]
        if low:
            out.append(low)
    return out


@lru_cache(maxsize=16384)
def _singular(word: str) -> str:
    """Very small English singulariser used for grouping and lookups."""
    irregular = {"people": "person", "children": "child", "women": "woman", "men": "man"}
    if word in irregular:
        return irregular[word]
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ches", "shes", "sses", "xes", "zzes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@lru_cache(maxsize=16384)
def _verb_lemma(word: str) -> str | None:
    """Return the base form if ``word`` is an inflection of a known product verb."""
    w = word.lower()
    if w in _VERBS:
        return w
    if w in _IRREGULAR_PAST:
        return _IRREGULAR_PAST[w]
    candidates: list[str] = []
    if w.endswith("ies"):
        candidates.append(w[:-3] + "y")
    if w.endswith("es"):
        candidates.append(w[:-2])
    if w.endswith("s"):
        candidates.append(w[:-1])
    if w.endswith("ing") and len(w) > 5:
        candidates += [w[:-3], w[:-3] + "e", w[:-4]]
    if w.endswith("ied"):
        candidates.append(w[:-3] + "y")
    if w.endswith("ed") and len(w) > 4:
        candidates += [w[:-2], w[:-1], w[:-3]]
    for cand in candidates:
        if cand in _VERBS:
            return cand
    return None


@lru_cache(maxsize=4096)
def _word_set(text: str) -> frozenset[str]:
    """The singular forms of all words of ``text``."""
    return frozenset(_singular(w) for w in _words(text))


@lru_cache(maxsize=1024)
def _content_set(term: str) -> frozenset[str]:
    """The singular content words of ``term`` (all words if it has only stopwords)."""
    words = _words(term)
    return frozenset(_singular(w) for w in words if w not in _STOPWORDS) or frozenset(
        _singular(w) for w in words
    )


def _mentions(text: str, term: str) -> bool:
    """Whether ``text`` mentions any content word of ``term`` (singular-insensitive)."""
    return not _content_set(term).isdisjoint(_word_set(text))


def _snippet(text: str, start: int, end: int, radius: int = 45) -> str:
    """A whitespace-collapsed excerpt around ``text[start:end]``."""
    lo = max(0, start - radius)
    hi = min(len(text), end + radius)
    while lo > 0 and not text[lo - 1].isspace() and start - lo < radius + 15:
        lo -= 1
    while hi < len(text) and not text[hi].isspace() and hi - end < radius + 15:
        hi += 1
    body = _inline(text[lo:hi], 200)
    return ("\u2026" if lo > 0 else "") + body + ("\u2026" if hi < len(text) else "")


def _is_person(word: str, *, contextual: bool) -> bool:
    """Whether ``word`` (lower-case) names a group of people or organisations."""
    if word.endswith("'s"):
        return False
    sing = _singular(word)
    if sing in _PERSON or word in _PERSON:
        return True
    if not contextual:
        return False
    if sing in _CONTEXTUAL_PERSON:
        return True
    return (
        len(word) >= 7 and word.endswith(("ers", "ists", "ians", "ors")) and word not in _NON_PERSON
    )


def _is_modifier(word: str) -> bool:
    """Whether ``word`` can pre-modify an audience noun ("home" in "home cooks")."""
    if word in _STOPWORDS or word in _DETERMINERS or not word[:1].isalpha():
        return False
    if word.endswith("ly") or word in _CONTEXT_PREV:
        return False
    return _verb_lemma(word) is None


# --------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class _Audience:
    phrase: str
    head: str
    mentions: int
    strong: int
    need: str
    evidence: str
    position: int
    inferred: bool = False

    @property
    def score(self) -> int:
        return self.mentions + 3 * self.strong


@dataclass(frozen=True)
class _Risk:
    name: str
    severity: str
    reason: str
    mitigation: str
    signal: str
    experiment: str


@dataclass(frozen=True)
class _Analysis:
    title: str
    summary: str
    text: str
    truncated: bool
    word_count: int
    sentences: tuple[str, ...]
    keywords: tuple[tuple[str, int], ...]
    bigrams: tuple[tuple[str, int], ...]
    audiences: tuple[_Audience, ...]
    categories: tuple[tuple[str, int, tuple[str, ...]], ...]
    domains: tuple[tuple[str, int, tuple[str, ...]], ...]
    features: tuple[str, ...]
    money: tuple[str, ...]
    pains: tuple[str, ...]
    geography: tuple[str, ...]
    risks: tuple[_Risk, ...]

    @property
    def category(self) -> str:
        return self.categories[0][0] if self.categories else "Unclassified product"

    @property
    def domain(self) -> str:
        return self.domains[0][0] if self.domains else "an unidentified domain"

    def kw(self, index: int, default: str = "the core idea") -> str:
        return self.keywords[index][0] if len(self.keywords) > index else default


def _split_title(raw: str) -> tuple[str, str]:
    lines = raw.strip().split("\n")
    if lines and (m := _HEADING_TITLE_RE.match(lines[0])):
        return _inline(_clean(m.group(1)), 80), "\n".join(lines[1:])
    return "", raw


def _keywords(words: Sequence[str]) -> tuple[tuple[str, int], ...]:
    counts: Counter[str] = Counter()
    surface: dict[str, Counter[str]] = {}
    first: dict[str, int] = {}
    for i, w in enumerate(words):
        if len(w) < 3 or not w[0].isalpha() or w in _STOPWORDS or w in _GENERIC:
            continue
        key = _singular(w)
        if key in _GENERIC or key in _STOPWORDS:
            continue
        counts[key] += 1
        surface.setdefault(key, Counter())[w] += 1
        first.setdefault(key, i)
    ranked = sorted(counts, key=lambda k: (-counts[k], first[k]))
    out = []
    for key in ranked[:12]:
        forms = surface[key]
        best = sorted(forms, key=lambda f: (-forms[f], len(f), f))[0]
        out.append((best, counts[key]))
    return tuple(out)


def _bigrams(sentences: Sequence[str]) -> tuple[tuple[str, int], ...]:
    counts: Counter[str] = Counter()
    first: dict[str, int] = {}
    pos = 0
    for sentence in sentences:
        for clause in _CLAUSE_SPLIT_RE.split(sentence):
            ws = _words(clause)
            for a, b in zip(ws, ws[1:], strict=False):
                pos += 1
                if a in _STOPWORDS or b in _STOPWORDS or len(a) < 3 or len(b) < 3:
                    continue
                if not (a[0].isalpha() and b[0].isalpha()) or (a in _GENERIC and b in _GENERIC):
                    continue
                key = f"{a} {b}"
                counts[key] += 1
                first.setdefault(key, pos)
    ranked = sorted(counts, key=lambda k: (-counts[k], first[k]))
    return tuple((k, counts[k]) for k in ranked[:8])


def _audiences(sentences: Sequence[str]) -> tuple[_Audience, ...]:
    found: dict[str, dict[str, object]] = {}
    pos = 0
    for sentence in sentences:
        for clause in _CLAUSE_SPLIT_RE.split(sentence):
            orig = _TOKEN_RE.findall(clause)
            low = [t.lower() for t in orig]
            last_end = -10
            for i, w in enumerate(low):
                pos += 1
                nxt = low[i + 1] if i + 1 < len(low) else ""
                j = i
                while j > 0 and i - j < 2 and _is_modifier(low[j - 1]):
                    j -= 1
                k = j
                while k > 0 and low[k - 1] in _DETERMINERS:
                    k -= 1
                prev = low[k - 1] if k > 0 else ""
                chained = prev in ("and", "or") and last_end == k - 2
                strong = prev in _CONTEXT_PREV or nxt in _CONTEXT_NEXT or chained
                if not _is_person(w, contextual=strong):
                    continue
                if (
                    _singular(w) == w
                    and nxt
                    and nxt not in _STOPWORDS
                    and _is_person(nxt, contextual=False)
                ):
                    continue  # "patient community": the head comes later
                if _singular(w) == w and nxt and nxt not in _STOPWORDS and not strong:
                    if _verb_lemma(nxt) is None:
                        continue  # "user interface": a compound noun, not an audience
                last_end = i
                head = _singular(w)
                phrase = " ".join(
                    t if t.isupper() and len(t) > 1 else t.lower() for t in orig[j : i + 1]
                )
                need = ""
                if nxt in ("who", "that") and i + 2 < len(orig):
                    need = " ".join(orig[i + 2 : i + 14])
                entry = found.get(head)
                if entry is None:
                    found[head] = {
                        "phrase": phrase,
                        "mentions": 1,
                        "strong": int(strong),
                        "need": need,
                        "evidence": sentence,
                        "position": pos,
                    }
                    continue
                entry["mentions"] = int(str(entry["mentions"])) + 1
                if strong:
                    if not int(str(entry["strong"])):
                        entry["phrase"] = phrase
                        entry["evidence"] = sentence
                    entry["strong"] = int(str(entry["strong"])) + 1
                if need and not entry["need"]:
                    entry["need"] = need
    audiences = [
        _Audience(
            phrase=str(v["phrase"]),
            head=h,
            mentions=int(str(v["mentions"])),
            strong=int(str(v["strong"])),
            need=str(v["need"]),
            evidence=str(v["evidence"]),
            position=int(str(v["position"])),
        )
        for h, v in found.items()
    ]
    audiences.sort(key=lambda a: (-a.score, a.position))
    return tuple(audiences[:6])


def _adjective_like(word: str) -> bool:
    """Whether ``word`` likely modifies a noun that follows after a comma."""
    w = word.lower()
    return w in _ADJECTIVES or "-" in w or w.endswith(("ful", "ous", "ive", "al", "ic"))


def _features(sentences: Sequence[str]) -> tuple[str, ...]:
    features: list[str] = []
    seen: set[str] = set()

    def add(phrase: str) -> None:
        phrase = phrase.strip(" ,;:-")
        key = phrase.lower()
        if len(phrase.split()) >= 2 and key not in seen:
            seen.add(key)
            features.append(phrase)

    for sentence in sentences:
        if _MONEY_RE.search(sentence):
            continue
        clauses = [c for c in _CLAUSE_SPLIT_RE.split(sentence) if c and c.strip()]
        is_list = len(clauses) >= 3
        pending = ""
        for ci, clause in enumerate(clauses):
            orig = _TOKEN_RE.findall(clause)
            low = [t.lower() for t in orig]
            starts = []
            for i, w in enumerate(low):
                lemma = _verb_lemma(w)
                if lemma is None or lemma in _META_VERBS:
                    continue
                prev = low[i - 1] if i > 0 else ""
                ok = i == 0 or (
                    prev not in _DETERMINERS
                    and (
                        prev in _STOPWORDS
                        or prev in _PRODUCT_NOUNS
                        or _is_person(prev, contextual=False)
                        or prev in ("and", "or", "then")
                    )
                )
                if ok:
                    starts.append((i, lemma))
            if not starts:
                if pending:
                    add(f"{pending}, {_inline(clause, 80)}")
                    pending = ""
                elif is_list and 1 <= len(low) <= 6:
                    content = [w for w in low if w not in _STOPWORDS]
                    if any(
                        w in _FEATURE_NOUNS
                        or w.endswith(("tion", "sion", "ment"))
                        or (w.endswith("ing") and _verb_lemma(w) is not None)
                        for w in content
                    ):
                        words = orig[1:] if low and low[0] in ("and", "or", "with") else orig
                        add(" ".join(words))
                continue
            if pending:
                add(pending)
                pending = ""
            carry = ""
            for si, (i, lemma) in enumerate(starts):
                end = starts[si + 1][0] if si + 1 < len(starts) else len(orig)
                stopped = False
                for t in range(i + 1, end):
                    nxt_word = low[t + 1] if t + 1 < len(low) else ""
                    if low[t] in _PHRASE_STOP or (
                        low[t] == "and"
                        and t - i >= 3
                        and nxt_word.endswith("s")
                        and not nxt_word.endswith("ss")
                        and nxt_word not in _FEATURE_NOUNS
                    ):
                        end, stopped = t, True
                        break
                words = [lemma, *orig[i + 1 : min(end, i + 10)]]
                while len(words) > 1 and words[-1].lower() in _STOPWORDS:
                    words.pop()
                if len(words) == 1:
                    carry = f"{carry}{lemma} and " if not stopped else ""
                    continue
                phrase = carry + " ".join(words)
                carry = ""
                last = si + 1 == len(starts)
                if (
                    last
                    and not stopped
                    and end == len(orig)
                    and len(words) <= 3
                    and _adjective_like(words[-1])
                ):
                    nxt_clause = clauses[ci + 1] if ci + 1 < len(clauses) else ""
                    if nxt_clause.strip():
                        pending = phrase
                        continue
                add(phrase)
        if pending:
            add(pending)
    return tuple(features[:10])


def _bag(words: Sequence[str]) -> Counter[str]:
    """Word counts where plural forms also count for their singular."""
    bag = Counter(words)
    bag.update(s for w in words if (s := _singular(w)) != w)
    return bag


def _categories(words: Sequence[str], text: str) -> tuple[tuple[str, int, tuple[str, ...]], ...]:
    bag = _bag(words)
    extra = {"command-line": len(re.findall(r"command line", text, re.I))}
    out = []
    for name, vocab in _CATEGORY_VOCAB.items():
        score = 0
        evidence = []
        for term, weight in vocab.items():
            n = bag.get(term, 0) + extra.get(term, 0)
            if n:
                score += weight * min(n, 3)
                evidence.append(term)
        if score:
            out.append((name, score, tuple(evidence[:5])))
    order = list(_CATEGORY_VOCAB)
    out.sort(key=lambda c: (-c[1], order.index(c[0])))
    return tuple(out)


def _domains(words: Sequence[str]) -> tuple[tuple[str, int, tuple[str, ...]], ...]:
    singulars = _bag(words)
    out = []
    for name, vocab in _DOMAIN_VOCAB.items():
        hits = sorted(v for v in vocab if singulars.get(v))
        score = sum(min(singulars[v], 3) for v in hits)
        if hits:
            out.append((name, score, tuple(hits[:5])))
    order = list(_DOMAIN_VOCAB)
    out.sort(key=lambda d: (-d[1], order.index(d[0])))
    strong = [d for d in out if d[1] >= 2]
    return tuple((strong or out)[:3])


def _risks(text: str) -> tuple[_Risk, ...]:
    risks = []
    for name, severity, pattern, mitigation, signal, experiment in _RISK_RULES:
        m = pattern.search(text)
        if m is None:
            continue
        excerpt = _snippet(text, m.start(), m.end(), radius=30)
        reason = f"mentions {_q(m.group(0), 40)} in {_q(excerpt, 90)}"
        risks.append(_Risk(name, severity, reason, mitigation, signal, experiment))
    risks.sort(key=lambda r: _SEVERITY_ORDER[r.severity])
    return tuple(risks)


_TITLE_NOUNS = frozenset(
    "app apps tool api marketplace platform site website service leaderboard bot extension "
    "plugin dashboard network tracker planner assistant".split()
)

_INFERRED_AUDIENCE: dict[str, tuple[str, str]] = {
    "Developer tools": ("developers", "developer"),
    "Weather & data": ("developers who need weather data", "developer"),
    "Fitness": ("gym-goers", "member"),
    "Health & wellbeing": ("people seeking wellbeing support", "patient"),
    "Finance & payments": ("small businesses", "business"),
    "Education": ("learners", "student"),
    "Food & cooking": ("home cooks", "cook"),
    "Outdoors & travel": ("outdoor enthusiasts", "hiker"),
    "Productivity & habits": ("people building habits", "user"),
    "Social & community": ("community members", "member"),
    "CLI tool": ("developers", "developer"),
    "API service": ("developers", "developer"),
    "B2B SaaS": ("small teams", "team"),
    "Marketplace": ("buyers and sellers", "user"),
    "Mobile app": ("smartphone users", "user"),
}


def _short_title(sentence: str) -> str:
    """A product name from the first noun phrase ("A weather API that ..." -> "Weather API")."""
    toks = _TOKEN_RE.findall(sentence)
    i = 0
    while i < len(toks) and toks[i].lower() in _DETERMINERS:
        i += 1
    phrase: list[str] = []
    for tok in toks[i : i + 5]:
        if tok.lower() in _STOPWORDS:
            break
        phrase.append(
            tok if tok.isupper() else "-".join(p[:1].upper() + p[1:] for p in tok.split("-"))
        )
        if tok.lower() in _TITLE_NOUNS:
            break
    if 2 <= len(phrase) <= 4 and phrase[-1].lower() in _TITLE_NOUNS:
        return " ".join(phrase)
    words = sentence.split()
    return _inline(" ".join(words[:6]) + ("\u2026" if len(words) > 6 else ""), 80)


def _inferred_audience(
    categories: Sequence[tuple[str, int, tuple[str, ...]]],
    domains: Sequence[tuple[str, int, tuple[str, ...]]],
) -> tuple[_Audience, ...]:
    """When the text names no users, infer them from the domain or category vocabulary."""
    for name, _, evidence in [*domains, *categories]:
        if name in _INFERRED_AUDIENCE:
            phrase, head = _INFERRED_AUDIENCE[name]
            why = f"not named in the idea; inferred from {name} vocabulary ({', '.join(evidence)})"
            return (_Audience(phrase, head, 0, 0, "", why, 0, inferred=True),)
    return ()


@lru_cache(maxsize=64)
def _analyse(idea: str) -> _Analysis:
    """Run every text heuristic once per idea text (cached: the agents share it)."""
    raw = idea if isinstance(idea, str) else str(idea)
    truncated = len(raw) > _MAX_ANALYSED_CHARS
    raw = raw[:_MAX_ANALYSED_CHARS]
    title, body = _split_title(raw.replace("\r\n", "\n"))
    text = _clean(body).strip()
    sentences = tuple(
        s.strip() for s in _SENTENCE_SPLIT_RE.split(text) if s.strip() and _TOKEN_RE.search(s)
    )
    summary = _inline(sentences[0], 240) if sentences else ""
    words = _words(f"{title}\n{text}")
    if not title:
        title = _short_title(_inline(sentences[0], 400)) if sentences else ""
        title = title or _inline(_clean(raw), 40) or "Untitled idea"
    categories = _categories(words, text)
    domains = _domains(words)
    audiences = _audiences(sentences) or _inferred_audience(categories, domains)
    return _Analysis(
        title=title,
        summary=summary,
        text=text,
        truncated=truncated,
        word_count=len(_words(text)),
        sentences=sentences,
        keywords=_keywords(words),
        bigrams=_bigrams(sentences),
        audiences=audiences,
        categories=categories,
        domains=domains,
        features=_features(sentences),
        money=tuple(s for s in sentences if _MONEY_RE.search(s)),
        pains=tuple(s for s in sentences if _PAIN_RE.search(s)),
        geography=tuple(dict.fromkeys(m.group(0) for m in _GEO_RE.finditer(text))),
        risks=_risks(text),
    )


# --------------------------------------------------------------------------- revision


_FOCUS_RE = re.compile(
    r"\b(?:focus(?:ed|ing)?\s+(?:more\s+|mainly\s+|only\s+)?(?:on|around)|emphasi[sz]e|"
    r"prioriti[sz]e|concentrate\s+on)\s+(?:the\s+)?([^.;,\n!?]{2,60})",
    re.IGNORECASE,
)
_AUDIENCE_RE = re.compile(
    r"\b(?:audience|target(?:\s+(?:audience|users|customers|segment|market))?|segment|persona)"
    r"\s*(?::|=|->|should\s+be|is)\s*([^.;,\n!?]{2,60})",
    re.IGNORECASE,
)
_DETAIL_RE = re.compile(
    r"\b(?:more\s+(?:detail|details|depth|specifics)\s+(?:on|about|for|regarding|around)|"
    r"(?:expand|elaborate|deepen)(?:\s+on)?)\s+(?:the\s+)?([^.;,\n!?]{2,60})",
    re.IGNORECASE,
)
_EXCLUDE_RE = re.compile(
    r"\b(?:remove|drop|exclude|omit|leave\s+out|ignore)\s+(?:the\s+|any\s+|all\s+)?"
    r"([^.;,\n!?]{2,60})",
    re.IGNORECASE,
)
_CONCISE_RE = re.compile(r"\b(?:shorter|concise|too\s+long|trim|tighten)\b", re.IGNORECASE)
_RISK_TOPIC_RE = re.compile(r"\b(?:risks?|threats?|dangers?|mitigat\w*|downside\w*)\b", re.I)


_TERM_FILLER = frozenset(
    "please instead section sections more idea ideas part parts bit angle stuff the a an".split()
)


def _term(raw: str, max_words: int = 5) -> str:
    """Trim a captured directive argument ("the sponsorship idea please" -> "sponsorship")."""
    words = raw.strip().split()[:max_words]
    while words and words[-1].lower() in _TERM_FILLER | _STOPWORDS:
        words.pop()
    return _inline(" ".join(words), 60)


@dataclass(frozen=True)
class _Request:
    source: str
    text: str
    focus: tuple[str, ...]
    audience: str
    detail: tuple[str, ...]
    exclude: tuple[str, ...]
    concise: bool


def _parse_request(source: str, text: str) -> _Request:
    return _Request(
        source=source,
        text=text,
        focus=tuple(t for m in _FOCUS_RE.finditer(text) if (t := _term(m.group(1)))),
        audience=next((_term(m.group(1), 9) for m in _AUDIENCE_RE.finditer(text)), ""),
        detail=tuple(t for m in _DETAIL_RE.finditer(text) if (t := _term(m.group(1)))),
        exclude=tuple(t for m in _EXCLUDE_RE.finditer(text) if (t := _term(m.group(1)))),
        concise=bool(_CONCISE_RE.search(text)),
    )


class _Revision:
    """Reviewer feedback for one agent run: parsed directives plus a log of their effect."""

    def __init__(self, ctx: AgentContext) -> None:
        self.count = max(0, int(ctx.retry_count or 0))
        self.comments = _clean(ctx.feedback_comments or "").strip()
        self.changes = tuple(
            _clean(str(c)).strip() for c in (ctx.requested_changes or ()) if str(c).strip()
        )
        self.active = self.count > 0 or bool(self.comments) or bool(self.changes)
        self.requests = [_parse_request(f"Change {i}", c) for i, c in enumerate(self.changes, 1)]
        if self.comments:
            self.requests.append(_parse_request("Comments", self.comments))
        self.focus = tuple(dict.fromkeys(t for r in self.requests for t in r.focus))
        self.exclude = tuple(dict.fromkeys(t for r in self.requests for t in r.exclude))
        self.detail = tuple(dict.fromkeys(t for r in self.requests for t in r.detail))
        self.audience = next((r.audience for r in self.requests if r.audience), "")
        self.concise = any(r.concise for r in self.requests)
        self.moved: Counter[str] = Counter()
        self.removed: Counter[str] = Counter()
        self.done: dict[str, str] = {}
        self.old_audience = ""

    def limit(self, n: int) -> int:
        """How many list items to show (more on a revision, fewer when asked to be short)."""
        if self.concise:
            return max(2, n - 2)
        if self.requests:
            return n
        return n + min(self.count, 2)

    def arrange(self, items: Iterable[_T], key: Callable[[_T], str]) -> list[_T]:
        """Drop excluded items and move items mentioning a focus term to the front."""
        kept = []
        for item in items:
            hit = next((t for t in self.exclude if _mentions(key(item), t)), None)
            if hit is not None:
                self.removed[hit] += 1
            else:
                kept.append(item)
        if not self.focus:
            return kept
        front, back = [], []
        for item in kept:
            hit = next((t for t in self.focus if _mentions(key(item), t)), None)
            if hit is not None:
                self.moved[hit] += 1
                front.append(item)
            else:
                back.append(item)
        return front + back

    def audience_for(self, derived: str) -> str:
        """The primary audience: the reviewer's choice if given, else ``derived``."""
        if self.audience:
            self.old_audience = derived
            return self.audience
        return derived

    def extra_sections(self, a: _Analysis, *, risks_inline: bool) -> list[tuple[str, str, bool]]:
        """Focus and "more detail" sections requested by the reviewer.

        Args:
            a: The idea analysis.
            risks_inline: The agent already shows risk detail in its own table.

        Returns:
            ``(heading, body, essential)`` sections to put before the agent's own.
        """
        sections: list[tuple[str, str, bool]] = []
        for term in self.focus:
            hits = [s for s in a.sentences if _mentions(s, term)][:3]
            feats = [f for f in a.features if _mentions(f, term)]
            lines = [f"- Idea says: {_q(s, 160)}" for s in hits]
            lines.append(f"- Derived features mentioning it: {len(feats)}")
            if not hits:
                lines.insert(
                    0, f"- The idea never mentions {_q(term)}, so nothing could be re-weighted."
                )
            sections.append((f"Focus: {_inline(term, 50)}", "\n".join(lines), True))
            self.done[f"focus:{term}"] = str(len(hits))
        for term in self.detail:
            if _RISK_TOPIC_RE.search(term) and risks_inline:
                self.done[f"detail:{term}"] = "inline"
                continue
            if _RISK_TOPIC_RE.search(term):
                rows = [
                    f"- **{r.name}** ({r.severity}): {r.mitigation} Early warning: {r.signal}"
                    for r in a.risks[: self.limit(5)]
                ] or ["- No risk trigger phrase occurs in the idea text, so no detail was added."]
                sections.append(("Risk detail", "\n".join(rows), True))
                self.done[f"detail:{term}"] = f"risk:{len(a.risks[: self.limit(5)])}"
                continue
            hits = [s for s in a.sentences if _mentions(s, term)][:3]
            feats = [f for f in a.features if _mentions(f, term)][:3]
            lines = [f"- Idea says: {_q(s, 160)}" for s in hits]
            lines += [f"- Related feature: {_inline(f, 100)}" for f in feats]
            if not lines:
                lines = [f"- No sentence or feature of the idea mentions {_q(term)}."]
            sections.append((f"More detail: {_inline(term, 50)}", "\n".join(lines), True))
            self.done[f"detail:{term}"] = str(len(hits) + len(feats))
        return sections

    def notes(self, a: _Analysis) -> str:
        """The ``## Revision notes`` body: each request and what was done about it."""
        lines = [
            f"Revision {self.count} of this phase."
            if self.count
            else "Re-run with reviewer feedback."
        ]
        if self.comments:
            lines.append("")
            lines.append("> Reviewer comments: " + _inline(self.comments, 400))
        lines.append("")
        if not self.requests:
            lines.append(
                "- No comments or requested changes were given; lists were expanded by up to "
                f"{self.limit(0)} item(s) each to surface more of the analysis."
            )
        for req in self.requests:
            label = (
                f"{req.source}: {_q(req.text, 160)}"
                if req.source != "Comments"
                else ("Comments (as a whole)")
            )
            lines.append(f"- **{label}** \u2014 {self._done_for(req, a)}")
        return "\n".join(lines)

    def _done_for(self, req: _Request, a: _Analysis) -> str:
        done = []
        for term in req.focus:
            n_sent = self.done.get(f"focus:{term}", "0")
            done.append(
                f"focused on {_q(term, 50)}: {self.moved[term]} derived item(s) mentioning it "
                f"moved to the top of their lists and a 'Focus' section quotes {n_sent} idea "
                "sentence(s)"
            )
        if req.audience:
            old = self.old_audience
            was = f" (derived audience was {_q(old, 60)})" if old else ""
            done.append(f"primary audience set to {_q(req.audience, 60)}{was}")
        for term in req.detail:
            res = self.done.get(f"detail:{term}", "0")
            if res == "inline":
                done.append("added an 'Early-warning signals' section for every listed risk")
            elif res.startswith("risk:"):
                done.append(f"added a 'Risk detail' section covering {res[5:]} risk(s)")
            else:
                done.append(f"added a 'More detail' section with {res} related item(s)")
        for term in req.exclude:
            done.append(f"removed {self.removed[term]} item(s) mentioning {_q(term, 50)}")
        if req.concise:
            done.append(f"lists shortened to at most {self.limit(5)} items")
        if done:
            return "; ".join(done) + "."
        related = _closest_sentence(req.text, a.sentences)
        tail = (
            f" Closest idea sentence: {_q(related, 140)}."
            if related
            else (" No idea sentence shares its vocabulary.")
        )
        return "no automatic rule matched this request; it is kept here for the reviewer." + tail


def _closest_sentence(text: str, sentences: Sequence[str]) -> str:
    wanted = {_singular(w) for w in _words(text) if w not in _STOPWORDS and len(w) > 2}
    best, best_n = "", 0
    for s in sentences:
        n = len(wanted & {_singular(w) for w in _words(s)})
        if n > best_n:
            best, best_n = s, n
    return best


# --------------------------------------------------------------------------- rendering


def _tag(previous: Mapping[int, Mapping[str, str]], tag: str) -> str:
    """Find ``**tag:** value`` in earlier outputs (latest phase wins)."""
    pattern = re.compile(rf"\*\*{re.escape(tag)}:\*\*\s*(.+)")
    for phase in sorted(previous, reverse=True):
        outputs = previous[phase]
        for name in sorted(outputs):
            m = pattern.search(str(outputs[name]))
            if m:
                return _inline(m.group(1), 160)
    return ""


def _key_line(content: str) -> str:
    """The ``Key finding`` line of an output, or its first plain text line."""
    m = re.search(r"\*\*Key finding:\*\*\s*(.+)", content)
    if m:
        return _inline(m.group(1), 220)
    for line in content.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "_", "|", "---", ">")):
            return _inline(line.lstrip("-*0123456789. "), 220)
    return ""


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_inline(c, 170) or "-" for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _bullets(items: Iterable[str], empty: str) -> str:
    lines = [f"- {item}" for item in items]
    return "\n".join(lines) if lines else f"- {empty}"


def _render(
    ctx: AgentContext,
    rev: _Revision,
    a: _Analysis,
    heading: str,
    key: str,
    tags: Sequence[tuple[str, str]],
    sections: list[tuple[str, str, bool]],
    *,
    risks_inline: bool = False,
) -> str:
    """Assemble the markdown; drop optional sections (last first) to stay under 4 KB."""
    if rev.active:
        sections = [*rev.extra_sections(a, risks_inline=risks_inline), *sections]
    meta = (
        f"_Phase {ctx.phase_number} \u00b7 {_inline(str(ctx.phase_name), 60)} \u00b7 agent "
        f"`{_inline(str(ctx.agent_name), 60)}` \u00b7 offline text analysis of "
        f"{a.word_count} word(s)_"
    )
    head = [f"# {heading}: {a.title}", "", meta, "", f"**Key finding:** {_inline(key, 300)}", ""]
    head += [f"- **{name}:** {_inline(value, 160) or 'not derived'}" for name, value in tags]
    if a.truncated:
        head += ["", f"_Only the first {_MAX_ANALYSED_CHARS:,} characters were analysed._"]
    notes = ["", "## Revision notes", "", rev.notes(a)] if rev.active else []

    def build(parts: Sequence[tuple[str, str, bool]]) -> str:
        body = [*head, *notes]
        for title, text, _ in parts:
            body += ["", f"## {title}", "", text.rstrip()]
        return "\n".join(body).rstrip() + "\n"

    kept = list(sections)
    out = build(kept)
    while len(out.encode("utf-8")) > _MAX_OUTPUT_BYTES:
        optional = [i for i, s in enumerate(kept) if not s[2]]
        if not optional:
            break
        del kept[optional[-1]]
        out = build(kept)
    for limit in (120, 90, 70, 50, 40):
        if len(out.encode("utf-8")) <= _MAX_OUTPUT_BYTES:
            break
        out = _compact(out, limit)
    if len(out.encode("utf-8")) < _MIN_OUTPUT_BYTES:
        out = build([*kept, ("Method", _method_note(ctx, a), False)])
    return out


def _compact(markdown: str, limit: int) -> str:
    """Shorten long bullet lines and table cells (cells never contain a bare ``|``)."""
    lines = []
    in_notes = False
    for line in markdown.split("\n"):
        if line.startswith("## "):
            in_notes = line == "## Revision notes"
        if in_notes:
            pass
        elif line.startswith("| ") and line.endswith(" |"):
            cells = line[2:-2].split(" | ")
            line = "| " + " | ".join(_inline(c, limit) for c in cells) + " |"
        elif line.startswith("- ") and len(line) > limit * 2:
            line = "- " + _inline(line[2:], limit * 2)
        lines.append(line)
    return "\n".join(lines)


def _method_note(ctx: AgentContext, a: _Analysis) -> str:
    done = sorted(int(p) for p in ctx.previous_outputs)
    return _bullets(
        [
            f"Input: {a.word_count} word(s) in {len(a.sentences)} sentence(s); "
            f"earlier phases available: {', '.join(map(str, done)) or 'none'}.",
            "Heuristics: stopword-filtered term frequency, bigrams, audience patterns "
            "(\u2018for X\u2019, \u2018where X can\u2019, \u2018X who\u2019), verb-phrase "
            "feature extraction, vocabulary scoring for category, domain and risks.",
            "Anything marked 'not derived' needs a richer idea description: who it is for, "
            "what they do today, what the product does and how it earns money.",
        ],
        "",
    )


def _gaps(a: _Analysis) -> list[str]:
    gaps = []
    if not a.keywords:
        gaps.append("No content words found, so no keywords or key phrases could be derived.")
    if not a.audiences or a.audiences[0].inferred:
        gaps.append(
            "The idea names no users ('for X', 'X who', role nouns)"
            + (f"; {_q(a.audiences[0].phrase)} is only inferred." if a.audiences else ".")
        )
    if not a.features:
        gaps.append("No features could be derived (no verb phrases or feature lists).")
    if not a.categories:
        gaps.append("The product category could not be derived from the vocabulary.")
    if not a.money:
        gaps.append("The idea does not say how it would earn money.")
    if not a.geography:
        gaps.append("No launch geography is mentioned.")
    if not a.pains:
        gaps.append("No explicit pain or workaround is described.")
    return gaps


_NO_AUDIENCE = "an audience not yet identified"


def _who(audience: str) -> str:
    """``audience`` for use after a number ("Interview 10 ...")."""
    return "prospective users" if audience == _NO_AUDIENCE else audience


def _primary(a: _Analysis, rev: _Revision, upstream: str = "") -> str:
    derived = upstream or (a.audiences[0].phrase if a.audiences else "")
    return rev.audience_for(derived) or _NO_AUDIENCE


def _inputs_section(
    previous: Mapping[int, Mapping[str, str]], phases: Iterable[int]
) -> tuple[str, str, bool]:
    lines = []
    for p in phases:
        for name in sorted(previous.get(p, {})):
            line = _key_line(str(previous[p][name]))
            if line:
                lines.append(f"- Phase {p} `{_inline(name, 40)}`: {_q(line, 200)}")
    body = "\n".join(lines) if lines else "- No earlier phase output was available."
    return ("Inputs from earlier phases", body, False)


# --------------------------------------------------------------------------- agents


def concept_expansion(ctx: AgentContext) -> str:
    """Phase 1: expand the raw idea into a structured concept brief.

    Derives the title, keywords (stopword-filtered term frequency), key phrases
    (bigrams), target users (audience patterns), features (verb phrases and lists),
    the product category and domain (vocabulary scores), monetisation and geography
    mentions, and lists what could not be derived.

    Args:
        ctx: The agent context; uses ``idea`` and the revision fields.

    Returns:
        The concept brief as markdown.
    """
    a = _analyse(ctx.idea)
    rev = _Revision(ctx)
    audience = _primary(a, rev)
    features = rev.arrange(a.features, str)[: rev.limit(6)]
    keywords = rev.arrange(a.keywords, lambda k: k[0])[: rev.limit(8)]
    audiences = rev.arrange(a.audiences, lambda x: x.phrase)[: rev.limit(4)]
    kw = [k for k, _ in keywords]
    key = f"{a.title} is {_an(a.category)} for {audience}" + (
        f", built around {', '.join(kw[:3])}." if kw else "; no keywords could be derived."
    )
    problem = _need_of(a, audience) or (a.pains[0] if a.pains else "") or "not stated"
    cat_ev = ", ".join(a.categories[0][2]) if a.categories else "no category vocabulary"
    brief = _table(
        ("Field", "Derived value", "Evidence"),
        [
            ("Product type", a.category, cat_ev),
            (
                "Domain",
                ", ".join(d[0] for d in a.domains) or "not derived",
                ", ".join(a.domains[0][2]) if a.domains else "-",
            ),
            (
                "Primary users",
                audience,
                "set by the reviewer"
                if rev.audience
                else (_snippet(audiences[0].evidence, 0, 0, 60) if audiences else "-"),
            ),
            ("Core problem", problem, "who-clause or pain cue" if problem != "not stated" else "-"),
            ("Core features", "; ".join(features[:3]) or "not derived", f"{len(a.features)} found"),
            ("Monetisation", a.money[0] if a.money else "not stated", "-"),
            ("Geography", ", ".join(a.geography) or "not stated", "-"),
        ],
    )
    users = [
        f"**{x.phrase}** \u2014 "
        + ("inferred" if x.inferred else f"{x.mentions} mention(s)")
        + (f"; need: {_q(x.need, 90)}" if x.need else "")
        + f"; evidence: {_q(x.evidence, 110)}"
        for x in audiences
    ]
    if rev.audience and not any(x.phrase == rev.audience for x in audiences):
        hits = sum(_mentions(s, rev.audience) for s in a.sentences)
        users.insert(
            0, f"**{rev.audience}** \u2014 set by the reviewer; {hits} idea sentence(s) mention it"
        )
    key_phrases = ", ".join(f"{b} ({n})" for b, n in a.bigrams[: rev.limit(5)])
    sections = [
        ("Concept brief", brief, True),
        ("Target users", _bullets(users, "Not derived: the idea names no users or roles."), True),
        (
            "Feature list",
            "\n".join(f"{i}. {_inline(f, 120)}" for i, f in enumerate(features, 1))
            or "- Not derived: no verb phrases describe what the product does.",
            True,
        ),
        (
            "Keywords",
            _bullets(
                [
                    ", ".join(f"{k} ({n})" for k, n in keywords) or "none",
                    f"Key phrases: {key_phrases or 'none'}",
                ],
                "",
            ),
            True,
        ),
        (
            "Problem statement",
            _bullets(
                [_q(p, 200) for p in a.pains[:2]],
                "No explicit pain is described"
                + ("; it is inferred from the features." if a.features else "."),
            ),
            False,
        ),
        ("Could not be derived", _bullets(_gaps(a), "Every brief field was derived."), False),
    ]
    tags = [("Category", a.category), ("Primary segment", audience)]
    return _render(ctx, rev, a, "Concept Expansion", key, tags, sections)


def market_intelligence(ctx: AgentContext) -> str:
    """Phase 2: size up the market from the idea's vocabulary.

    Derives the market category and domains with the terms that matched, a segment
    table from the extracted audiences (mentions, context, need), demand signals from
    keyword and bigram counts, category-specific market dynamics phrased with the
    idea's own keywords, and the open questions the text leaves unanswered.

    Args:
        ctx: The agent context; uses ``idea``, phase 1 output and the revision fields.

    Returns:
        The market research report as markdown.
    """
    a = _analyse(ctx.idea)
    rev = _Revision(ctx)
    audience = _primary(a, rev, _tag(ctx.previous_outputs, "Primary segment"))
    segments = rev.arrange(a.audiences, lambda x: x.phrase)[: rev.limit(4)]
    terms = rev.arrange([*a.keywords[:6], *a.bigrams[:4]], lambda t: t[0])[: rev.limit(8)]
    top = segments[0] if segments else None
    key = (
        f"{a.category} in {a.domain}; strongest segment {_q(audience, 60)}"
        + (f" ({top.mentions} mention(s))" if top and top.phrase == audience else "")
        + (f", demand vocabulary led by {_q(a.kw(0), 40)}." if a.keywords else ".")
    )
    definition = _bullets(
        [f"Category: **{c}** (score {s}; matched {', '.join(ev)})" for c, s, ev in a.categories[:3]]
        + [f"Domain: **{d}** (matched {', '.join(ev)})" for d, _, ev in a.domains],
        "No category or domain vocabulary found; the market cannot be placed yet.",
    )
    seg_table = _table(
        ("Segment", "Mentions", "Context", "Need / evidence"),
        [
            (
                x.phrase,
                str(x.mentions),
                "explicit target" if x.strong else "mentioned",
                x.need or _snippet(x.evidence, 0, 0, 60),
            )
            for x in segments
        ]
        or [("not derived", "0", "-", "the idea names no users")],
    )
    signals = _table(
        ("Term", "Count", "Kind"),
        [(t, str(n), "phrase" if " " in t else "keyword") for t, n in terms]
        or [("none", "0", "-")],
    )
    kw0, kw1 = a.kw(0), a.kw(1, a.kw(0))
    dynamics = {
        "Mobile app": f"App-store search and referrals drive installs; retention beyond "
        f"week 4 decides whether {_q(kw0)} becomes a habit.",
        "CLI tool": f"Developers adopt through word of mouth and READMEs; {_q(kw0)} must work "
        "in CI as well as locally.",
        "API service": f"Buyers compare price per call and reliability; {_q(kw0)} needs an SLA "
        "and clear docs to be trusted.",
        "Marketplace": f"Liquidity beats features: the first market for {_q(kw0)} should be "
        "small enough to fill both sides.",
        "Community platform": f"Value grows with active contributors; {_q(kw0)} content must "
        "stay fresh to keep readers coming back.",
        "B2B SaaS": f"Sales cycles depend on who owns the budget for {_q(kw0)}; integrations "
        "shorten them.",
        "Web app": f"Search and content marketing around {_q(kw0)} and {_q(kw1)} are the "
        "cheapest acquisition paths.",
    }
    questions = []
    if not a.money:
        questions.append("How will it earn money? No pricing or revenue words were found.")
    if not a.geography:
        questions.append("Where does it launch first? No geography is mentioned.")
    if not a.pains:
        questions.append("What do users do today? No workaround or pain is described.")
    if len(a.audiences) < 2:
        questions.append("Is there a second segment? Only one or no audience was found.")
    sections = [
        ("Market definition", definition, True),
        ("Segments", seg_table, True),
        ("Demand signals", signals, True),
        (
            "Market dynamics",
            _bullets(
                [dynamics.get(a.category, f"No category-specific dynamics: {a.category}.")]
                + [f"Pain evidence: {_q(p, 150)}" for p in a.pains[:2]],
                "",
            ),
            False,
        ),
        (
            "Open questions",
            _bullets(questions, "The idea answers the basic market questions."),
            False,
        ),
        _inputs_section(ctx.previous_outputs, (1,)),
    ]
    tags = [("Category", a.category), ("Primary segment", audience)]
    return _render(ctx, rev, a, "Market Intelligence", key, tags, sections)


def _competitors(a: _Analysis) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    features = list(a.features) or [f"a focus on {a.kw(0)}"]
    for i, (name, why) in enumerate(_CATEGORY_COMPETITORS.get(a.category, ())):
        ev = ", ".join(a.categories[0][2][:3]) if a.categories else ""
        gap = features[i % len(features)]
        rows.append((name, f"{why} (idea vocabulary: {ev})", f"rarely offer: {gap}"))
    for j, (domain, _, matched) in enumerate(a.domains[:2]):
        if domain in _DOMAIN_COMPETITORS:
            gap = features[(j + 2) % len(features)]
            rows.append(
                (
                    _DOMAIN_COMPETITORS[domain],
                    f"same domain (matched {', '.join(matched)})",
                    f"generic, not built for: {gap}",
                )
            )
    job = _q(a.features[0], 60) if a.features else f"anything around {_q(a.kw(0))}"
    rows.append(
        (
            "Status quo: doing it by hand",
            f"today people handle {job} with spreadsheets, chats or e-mail",
            "less manual effort and a shared record",
        )
    )
    return rows


def competitor_analysis(ctx: AgentContext) -> str:
    """Phase 2: guess the competitor categories from the idea's vocabulary.

    Maps the detected category and domains to competitor types (no company names are
    invented), always includes the do-it-by-hand status quo, pairs every competitor
    type with an idea feature it rarely offers, and rates how crowded the space is.

    Args:
        ctx: The agent context; uses ``idea``, phase 1 output and the revision fields.

    Returns:
        The competitor analysis as markdown.
    """
    a = _analyse(ctx.idea)
    rev = _Revision(ctx)
    rows = rev.arrange(_competitors(a), lambda r: " ".join(r))[: rev.limit(5)]
    closest = rows[0][0] if rows else "Status quo"
    features = rev.arrange(a.features, str)[:3]
    crowded = len(rows) + (2 if a.category in ("Mobile app", "Web app") else 0)
    level = "Crowded" if crowded >= 6 else "Moderate" if crowded >= 4 else "Open"
    key = f"Closest alternative: {closest}; {len(rows)} competitor type(s) found" + (
        f"; differentiate on {_q(features[0], 80)}."
        if features
        else "; no feature could be derived to differentiate on."
    )
    audience = _primary(a, rev)
    levers = [
        f"{_q(f, 100)} \u2014 test whether {audience} choose it over {row[0].lower()}"
        for f, row in zip(features, rows, strict=False)
    ]
    bigram_edge = [
        f"Own the phrase {_q(b)} in messaging ({n} mention(s))" for b, n in a.bigrams[:2]
    ]
    sections = [
        (
            "Competitor landscape",
            _table(("Competitor type", "Why it competes", "Gap to exploit"), rows),
            True,
        ),
        (
            "Differentiation levers",
            _bullets(levers + bigram_edge, "No features or phrases to differentiate on."),
            True,
        ),
        (
            "Crowdedness",
            _bullets(
                [
                    f"Assessment: **{level}** ({len(rows)} competitor types; "
                    f"category {a.category})",
                    "Switching cost is low for consumers, so the first session must show the "
                    "difference."
                    if a.category in ("Mobile app", "Community platform", "Web app")
                    else "Switching cost is moderate; integrations and data import matter.",
                ],
                "",
            ),
            False,
        ),
        _inputs_section(ctx.previous_outputs, (1,)),
    ]
    tags = [("Closest alternative", closest), ("Competitive intensity", level)]
    return _render(ctx, rev, a, "Competitor Analysis", key, tags, sections)


_B2B_HEADS = frozenset(
    "team company agency business platform developer engineer shop store clinic school "
    "restaurant professional freelancer accountant organisation organization".split()
)


def _feature_in(feature: str, sentence: str) -> bool:
    """Whether a feature's object words occur verbatim in ``sentence``."""
    obj = feature.split(" ", 1)[-1].lower()
    return len(obj) > 3 and obj in sentence.lower()


_NICHE_CRITERIA = ("Specificity", "Pain", "Reach", "WTP", "Fit", "Prominence")


@dataclass(frozen=True)
class _Niche:
    label: str
    scores: tuple[int, ...]
    bonus: int

    @property
    def total(self) -> int:
        return sum(self.scores) + self.bonus


def _niche_rows(a: _Analysis, rev: _Revision, upstream: str) -> list[_Niche]:
    """Score every candidate niche on the six criteria (1-5 each)."""
    by_label = {x.phrase.lower(): x for x in a.audiences}
    labels = [rev.audience, upstream, *(x.phrase for x in a.audiences)]
    labels = list(dict.fromkeys(lbl for lbl in labels if lbl))
    if not labels:
        labels = [f"early adopters of {k}" for k, _ in a.keywords[:3]]
    rows = []
    for label in labels[:6]:
        excluded = next((t for t in rev.exclude if _mentions(label, t)), None)
        if excluded is not None:
            rev.removed[excluded] += 1
            continue
        aud = by_label.get(label.lower())
        ws = _words(label)
        head = aud.head if aud else (_singular(ws[-1]) if ws else "")
        sents = [s for s in a.sentences if _mentions(s, label)]
        near_pain = any(_PAIN_RE.search(s) for s in sents)
        spec = min(5, 1 + len(label.split()) + int(near_pain))
        pain = min(5, 1 + sum(len(_PAIN_RE.findall(s)) for s in sents))
        reach = min(5, (4 if head in _CHANNELS else 2) + int(len(sents) >= 2))
        wtp = min(
            5, (4 if head in _B2B_HEADS else 2) + int(any(_mentions(m, label) for m in a.money))
        )
        fit = min(
            5,
            1
            + sum(
                1
                for f in a.features
                if _mentions(f, label) or any(_feature_in(f, s) for s in sents)
            ),
        )
        prominence = min(5, 1 + (aud.mentions + aud.strong if aud else len(sents)))
        focus = next((t for t in rev.focus if _mentions(label, t)), None)
        if focus is not None:
            rev.moved[focus] += 1
        scores = (spec, pain, reach, wtp, fit, prominence)
        rows.append(_Niche(label, scores, 3 if focus is not None else 0))
    if not rows:
        rows = [_Niche("a general audience (none could be derived)", (1, 1, 2, 2, 1, 1), 0)]
    rows.sort(key=lambda r: -r.total)
    return rows


def niche_selection(ctx: AgentContext) -> str:
    """Phase 3: score candidate niches and pick one.

    Candidates are the extracted audiences (plus the segment named by phase 2 and any
    reviewer-specified audience). Each is scored 1-5 on specificity, pain evidence
    (pain cues in sentences that mention it), reachability (known channels),
    willingness to pay (business buyers, money sentences), feature fit and prominence
    (how often and how explicitly the idea targets it).

    Args:
        ctx: The agent context; uses ``idea``, phases 1-2 outputs and the revision fields.

    Returns:
        The niche scoring table and selection as markdown.
    """
    a = _analyse(ctx.idea)
    rev = _Revision(ctx)
    upstream = _tag(ctx.previous_outputs, "Primary segment")
    rows = _niche_rows(a, rev, upstream)
    rank = next((i for i, r in enumerate(rows) if rev.audience and r.label == rev.audience), 0)
    ranked_rows = [rows[rank], *rows[:rank], *rows[rank + 1 :]]
    rows = ranked_rows[: rev.limit(5)]
    pinned = next((r for r in ranked_rows if r.label == upstream), None)
    if pinned is not None and pinned not in rows:
        rows[-1] = pinned  # always show the segment phase 2 proposed
    best = rows[0]
    header = ["Niche", *_NICHE_CRITERIA, *(("Focus bonus",) if rev.focus else ()), "Total"]
    table = _table(
        header,
        [
            (
                r.label,
                *(str(v) for v in r.scores),
                *((str(r.bonus),) if rev.focus else ()),
                str(r.total),
            )
            for r in rows
        ],
    )
    ranked = sorted(zip(_NICHE_CRITERIA, best.scores, strict=True), key=lambda nv: -nv[1])
    why = [f"Strongest on {n.lower()} ({v}/5)" for n, v in ranked[:2]]
    if rev.audience and best.label == rev.audience:
        why.insert(0, f"Chosen by the reviewer; by score alone it ranks #{rank + 1}")
    why.append(f"Weakest on {ranked[-1][0].lower()} ({ranked[-1][1]}/5): validate this first")
    if len(rows) > 1:
        why.append(f"Runner-up: {_q(rows[1].label, 60)} ({rows[1].total} points)")
    sents = [s for s in a.sentences if _mentions(s, best.label)][:2]
    key = (
        f"Selected niche {_q(best.label, 60)} with {best.total}/30 points "
        f"out of {len(rows)} candidate(s)."
    )
    sections = [
        ("Niche scoring", table, True),
        ("Why this niche", _bullets(why + [f"Idea says: {_q(s, 150)}" for s in sents], ""), True),
        (
            "Scoring rules",
            _bullets(
                [
                    "Specificity: words in the niche label, +1 if a pain cue is nearby.",
                    "Pain: 1 + pain cues in sentences that mention the niche.",
                    "Reach: 4 when a known channel exists for the role, +1 for repeated mentions.",
                    "WTP: 4 for business buyers, 2 for consumers, +1 if a money sentence "
                    "names them.",
                    "Fit: 1 + features that mention the niche or come from its sentences.",
                    "Prominence: 1 + mentions + explicit targeting ('for X', 'where X can').",
                ],
                "",
            ),
            False,
        ),
        _inputs_section(ctx.previous_outputs, (1, 2)),
    ]
    tags = [("Selected niche", f"{best.label} ({best.total}/30)"), ("Primary segment", best.label)]
    return _render(ctx, rev, a, "Niche Selection", key, tags, sections)


def _niche_name(ctx: AgentContext, a: _Analysis, rev: _Revision) -> str:
    niche = _tag(ctx.previous_outputs, "Selected niche")
    niche = re.sub(r"\s*\(\d+/\d+\)\s*$", "", niche)
    return rev.audience_for(niche or (a.audiences[0].phrase if a.audiences else "")) or (
        _NO_AUDIENCE
    )


def _need_of(a: _Analysis, audience: str) -> str:
    """What ``audience`` needs: its own who-clause, else the first pain sentence."""
    for x in a.audiences:
        if x.need and (x.phrase.lower() == audience.lower() or _mentions(x.phrase, audience)):
            return x.need
    return ""


def product_strategy(ctx: AgentContext) -> str:
    """Phase 4: turn the concept and niche into an MVP strategy.

    Builds a positioning statement from the niche (phase 3), category and top feature;
    prioritises the extracted features into P0/P1 (features mentioning the niche first);
    moves complexity flagged by risk triggers (real-time, payments, AI, ...) out of the
    MVP; and picks category-specific entry point and success metrics.

    Args:
        ctx: The agent context; uses ``idea``, earlier outputs and the revision fields.

    Returns:
        The product strategy as markdown.
    """
    a = _analyse(ctx.idea)
    rev = _Revision(ctx)
    niche = _niche_name(ctx, a, rev)
    feats = sorted(a.features, key=lambda f: not _mentions(f, niche))
    feats = rev.arrange(feats, str)
    p0, p1 = feats[:3], feats[3 : 3 + rev.limit(3)]
    alt = _tag(ctx.previous_outputs, "Closest alternative") or (
        _competitors(a)[0][0] if a.categories else "the status quo"
    )
    need = _need_of(a, niche) or (
        f"care about {a.kw(0)}" if a.keywords else "have the problem described"
    )
    lead = p0[0] if p0 else ""
    if not lead:
        does = "does the core job described in the idea"
    elif _verb_lemma(lead.split()[0]) is not None:
        does = f"lets them {lead}"
    else:
        does = f"offers {lead}"
    positioning = (
        f"For {niche} who {_inline(need, 90)}, {a.title} is {_an(a.category)} that "
        f"{does}. Unlike {alt.lower()}, it is built around {_q(a.kw(0))}."
    )
    scope = [("P0", f, "mentions the niche" if _mentions(f, niche) else "core loop") for f in p0]
    scope += [("P1", f, "after first users") for f in p1]
    deferred = {
        "Real-time infrastructure cost": "Live updates: start with periodic refresh",
        "Payment handling, fraud and disputes": "In-house payments: use a hosted checkout",
        "AI output quality and cost": "Automated AI output: keep a human review step",
        "Two-sided cold start": "Open self-serve supply: onboard the first side by hand",
        "Tax and legal correctness": "All jurisdictions: start with one or two",
        "Location privacy and safety": "Precise public locations: round them",
    }
    out_scope = [deferred[r.name] for r in a.risks if r.name in deferred]
    steps = [_ENTRY_POINTS.get(a.category, "Sign up")] + [f[:1].upper() + f[1:] for f in p0]
    metrics = _METRICS.get(a.category, (("Activation rate", ">= 40%"),))
    key = (
        f"MVP for {_q(niche, 60)}: {len(p0)} P0 feature(s)"
        + (f", led by {_q(p0[0], 80)}" if p0 else " (none derived)")
        + f"; {len(out_scope)} complex item(s) deferred."
    )
    sections = [
        ("Positioning", positioning, True),
        (
            "MVP scope",
            _table(
                ("Priority", "Feature", "Why"),
                scope or [("P0", "not derived", "the idea describes no product actions")],
            ),
            True,
        ),
        ("Core loop", "\n".join(f"{i}. {_inline(s, 120)}" for i, s in enumerate(steps, 1)), True),
        ("Deferred (out of MVP scope)", _bullets(out_scope, "Nothing flagged as complex."), False),
        ("Success metrics", _table(("Metric", "Target"), metrics), False),
        _inputs_section(ctx.previous_outputs, (1, 2, 3)),
    ]
    tags = [("MVP core features", "; ".join(p0) or "not derived")]
    return _render(ctx, rev, a, "Product Strategy", key, tags, sections)


def business_planning(ctx: AgentContext) -> str:
    """Phase 5: derive a business model hypothesis.

    The revenue model comes from pricing cues in the idea ("usage-based", "premium",
    "sponsor", ...) quoted back, else from the category; cost drivers come from the
    triggered risks; go-to-market channels from the audiences; milestones from the
    MVP features of phase 4 (or the extracted features).

    Args:
        ctx: The agent context; uses ``idea``, earlier outputs and the revision fields.

    Returns:
        The business plan as markdown.
    """
    a = _analyse(ctx.idea)
    rev = _Revision(ctx)
    cues = [(name, s) for name, pat in _PRICING_CUES for s in a.money if pat.search(s)]
    cues = rev.arrange(dict.fromkeys(cues), lambda c: f"{c[0]} {c[1]}")
    default_model, tiers = _PRICING.get(a.category, ("Subscription", _PRICING["Web app"][1]))
    models = list(dict.fromkeys(name for name, _ in cues)) or [default_model]
    model = " + ".join(models[:2])
    evidence = [f"{name}: idea says {_q(s, 150)}" for name, s in cues[:3]] or [
        f"No pricing cue in the idea; {default_model.lower()} is the usual model for a "
        f"{a.category.lower()}."
    ]
    costs = {
        "Upstream provider dependency": "Upstream API fees per call",
        "Payment handling, fraud and disputes": "Payment processing fees (about 1.5-3%)",
        "Real-time infrastructure cost": "Always-on real-time infrastructure",
        "Sensitive health data and regulation": "Compliance review and secure hosting",
        "Tax and legal correctness": "Expert review of tax and legal rules",
        "User-generated content moderation and rights": "Moderation time",
        "AI output quality and cost": "Model inference per request",
        "Two-sided cold start": "Manual supply acquisition",
    }
    cost_lines = [f"{costs[r.name]} \u2014 {r.reason}" for r in a.risks if r.name in costs]
    cost_lines.append("Hosting and support for the core loop")
    segments = rev.arrange(a.audiences, lambda x: x.phrase)[: rev.limit(3)]
    if rev.audience:
        ws = _words(rev.audience)
        head = _singular(ws[-1]) if ws else ""
        gtm = [(rev.audience, _CHANNELS.get(head, _CHANNELS["company_default"]))]
    else:
        gtm = []
    gtm += [(x.phrase, _CHANNELS.get(x.head, _CHANNELS["company_default"])) for x in segments]
    mvp = _tag(ctx.previous_outputs, "MVP core features")
    steps = [s for s in mvp.split("; ") if s and s != "not derived"] or list(a.features[:3])
    milestones = [("Month 1-2", f"Build: {steps[0]}" if steps else "Write a sharper idea brief")]
    milestones += [(f"Month {i + 2}", f"Add: {s}") for i, s in enumerate(steps[1:3], 1)]
    milestones.append(("Month 4-6", f"First paying customers via {model.lower()}"))
    key = (
        f"Revenue model: {model}; {len(cost_lines)} cost driver(s); first channel: "
        + (gtm[0][1].split(",")[0] if gtm else "content marketing")
        + "."
    )
    sections = [
        ("Revenue model", _bullets(evidence, ""), True),
        ("Pricing hypothesis", _table(("Tier", "Price (hypothesis)", "Includes"), tiers), True),
        ("Cost drivers", _bullets(cost_lines[: rev.limit(5)], ""), True),
        (
            "Go-to-market channels",
            _table(("Segment", "Channels"), gtm or [("not derived", _CHANNELS["company_default"])]),
            True,
        ),
        ("Milestones", _table(("When", "Milestone"), milestones), False),
        _inputs_section(ctx.previous_outputs, (3, 4)),
    ]
    tags = [("Revenue model", model)]
    return _render(ctx, rev, a, "Business Planning", key, tags, sections)


def _overall(risks: Sequence[_Risk]) -> str:
    high = sum(r.severity == "High" for r in risks)
    medium = sum(r.severity == "Medium" for r in risks)
    return "High" if high >= 2 else "Medium" if high == 1 or medium >= 3 else "Low"


def risk_assessment(ctx: AgentContext) -> str:
    """Phase 6: a risk checklist and validation experiments.

    Each risk is triggered by a phrase in the idea (real-time, payments, marketplace,
    anonymous, health, API providers, AI, location, ...) and quotes that phrase; demand
    and distribution risks are derived from the primary audience. Experiments test the
    audience's problem, the top feature and every high risk.

    Args:
        ctx: The agent context; uses ``idea``, earlier outputs and the revision fields.

    Returns:
        The risk checklist and validation plan as markdown.
    """
    a = _analyse(ctx.idea)
    rev = _Revision(ctx)
    niche = _niche_name(ctx, a, rev)
    detailed = any(_RISK_TOPIC_RE.search(t) for t in rev.detail)
    ordered = rev.arrange(a.risks, lambda r: f"{r.name} {r.reason}")
    risks = ordered[: 6 if rev.requests else rev.limit(7)]  # reviewer notes need room
    level = _overall(a.risks)
    rows = [(r.name, r.severity, r.reason, r.mitigation) for r in risks]
    rows.append(
        (
            "Demand",
            "Medium",
            f"{_who(niche)} may not feel the problem strongly enough",
            "Interview before building",
        )
    )
    feature = a.features[0] if a.features else ""
    experiments = [
        (f"Interview 10 {_who(niche)}", "they have the problem", "6/10 describe it unprompted"),
    ]
    if feature:
        experiments.append(
            (
                f"Landing page promising {_q(feature, 70)}",
                "the top feature attracts",
                ">= 10% visitor sign-up",
            )
        )
    experiments += [(r.experiment, f"{r.name.lower()} is manageable", r.signal) for r in risks[:3]]
    kill = [
        f"Stop if fewer than 3 of 10 {_who(niche)} confirm the problem.",
        f"Stop if {risks[0].name.lower()} cannot be mitigated within the MVP budget."
        if risks
        else "Stop if no one signs up from the landing page.",
    ]
    high = sum(r.severity == "High" for r in a.risks)
    key = f"Overall risk {level}: {len(a.risks)} idea-specific risk(s), {high} high" + (
        f", led by {_q(risks[0].name, 60)}." if risks else "; no trigger phrases found."
    )
    sections = [
        (
            "Risk checklist",
            _table(("Risk", "Severity", "Why (quoted)", "Mitigation"), rows)
            + (
                f"\n\nAlso triggered: {'; '.join(r.name for r in ordered[len(risks) :])}."
                if len(ordered) > len(risks)
                else ""
            ),
            True,
        ),
        (
            "Validation experiments",
            _table(("Experiment", "Tests that", "Success signal"), experiments),
            True,
        ),
        ("Kill criteria", _bullets(kill, ""), False),
        _inputs_section(ctx.previous_outputs, (3, 4, 5)),
    ]
    if detailed:
        signals = [f"**{r.name}:** {r.signal}" for r in risks]
        sections.insert(1, ("Early-warning signals", _bullets(signals, "No risks to watch."), True))
    if not a.risks:
        sections.insert(
            1,
            (
                "Trigger scan",
                "- No risk trigger phrase (payments, real-time, "
                "health, marketplace, AI, ...) occurs in the idea; only generic "
                "demand risk applies.",
                True,
            ),
        )
    tags = [("Overall risk level", level), ("Selected niche", niche)]
    return _render(ctx, rev, a, "Risk Assessment", key, tags, sections, risks_inline=True)


def final_synthesis(ctx: AgentContext) -> str:
    """Phase 7: pull the earlier phases together into a verdict.

    Quotes the key line of every earlier output, lists phases with no output, reads
    the tagged values (category, niche, MVP features, revenue model, risk level) from
    the earlier outputs (recomputing any that are missing), scores the idea and
    proposes next steps from the validation experiments of phase 6.

    Args:
        ctx: The agent context; uses ``idea``, all earlier outputs and the revision fields.

    Returns:
        The final synthesis as markdown.
    """
    a = _analyse(ctx.idea)
    rev = _Revision(ctx)
    prev = ctx.previous_outputs
    rows = []
    for p in sorted(prev):
        for name in sorted(prev[p]):
            rows.append(
                (
                    f"{p} {PHASE_NAMES.get(p, '')}".strip(),
                    name,
                    _q(_key_line(str(prev[p][name])) or "(empty output)", 150),
                )
            )
    missing = [f"{p} {PHASE_NAMES[p]}" for p in range(1, 7) if p not in prev]
    niche_tag = _tag(prev, "Selected niche")
    m = re.search(r"\((\d+)/30\)", niche_tag)
    niche_score = int(m.group(1)) if m else _niche_rows(a, _Revision(ctx), "")[0].total
    level = _tag(prev, "Overall risk level").split(" ")[0] or _overall(a.risks)
    values = [
        ("Category", _tag(prev, "Category") or a.category),
        ("Niche", niche_tag or _niche_name(ctx, a, rev)),
        ("MVP core features", _tag(prev, "MVP core features") or "; ".join(a.features[:3])),
        ("Revenue model", _tag(prev, "Revenue model") or "not assessed"),
        ("Overall risk", level),
    ]
    score = (
        round(50 * min(niche_score, 30) / 30)
        + 5 * min(len(a.features), 5)
        + {"Low": 25, "Medium": 15, "High": 5}.get(level, 10)
    )
    verdict = (
        "Proceed to MVP"
        if score >= 70
        else "Proceed with conditions"
        if score >= 50
        else "Rework the concept"
    )
    capped = verdict == "Proceed to MVP" and level == "High"
    if capped:
        verdict = "Proceed with conditions"
    experiments = []
    p6 = next(iter(sorted(prev.get(6, {}).items())), ("", ""))[1]
    section = str(p6).split("## Validation experiments", 1)
    if len(section) == 2:
        for line in section[1].splitlines():
            if line.startswith("| ") and not line.startswith(("| Experiment", "|---")):
                experiments.append(line.strip("| ").split(" | ")[0])
            elif line.startswith("## "):
                break
    if not experiments:
        experiments = [f"Interview 10 {_who(_niche_name(ctx, a, rev))} about the problem"]
    checks = []
    cat_tag = _tag(prev, "Category")
    if cat_tag:
        same = cat_tag.lower() == a.category.lower()
        checks.append(
            f"Category from earlier phases {_q(cat_tag, 40)} "
            + (
                "matches the recomputed one."
                if same
                else f"differs from the recomputed {_q(a.category, 40)}."
            )
        )
    niche_word = _niche_name(ctx, a, rev)
    checks.append(
        f"Niche {_q(niche_word, 60)} "
        + (
            "appears in the idea text."
            if _mentions(a.text, niche_word)
            else "does not appear in the idea text; confirm it with interviews."
        )
    )
    key = f"Verdict: {verdict} (score {score}/100) for {a.title}; risk {level}."
    sections = [
        (
            "Phase summaries",
            _table(
                ("Phase", "Agent", "Key line"),
                rows or [("-", "-", "no earlier phase output was available")],
            ),
            True,
        ),
        ("Scorecard", _table(("Item", "Value"), values), True),
        (
            "Verdict",
            _bullets(
                [
                    f"**{verdict}** \u2014 score {score}/100 = niche score "
                    f"({niche_score}/30, scaled to 50) + 5 \u00d7 features "
                    f"({min(len(a.features), 5)}) + risk allowance ({level})"
                    + ("; capped because the overall risk is High." if capped else "."),
                    *(f"Not run: phase {p}" for p in missing),
                ],
                "",
            ),
            True,
        ),
        (
            "Next steps",
            "\n".join(
                f"{i}. {_inline(e, 140)}" for i, e in enumerate(experiments[: rev.limit(3)], 1)
            ),
            True,
        ),
        ("Consistency check", _bullets(checks, ""), False),
    ]
    tags = [("Verdict", verdict), ("Category", values[0][1])]
    return _render(ctx, rev, a, "Final Synthesis", key, tags, sections)


AGENTS: dict[str, Callable[[AgentContext], str]] = {
    "concept_expansion": concept_expansion,
    "market_intelligence": market_intelligence,
    "competitor_analysis": competitor_analysis,
    "niche_selection": niche_selection,
    "product_strategy": product_strategy,
    "business_planning": business_planning,
    "risk_assessment": risk_assessment,
    "final_synthesis": final_synthesis,
}
"""Every agent function by agent name."""
