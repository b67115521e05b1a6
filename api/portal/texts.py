"""What the debtor's page says, in English and Dutch. `{name}` fields are filled by the page."""

from __future__ import annotations

LANGUAGES = {"en": "English", "nl": "Nederlands"}

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Your invoices",
        "invalid_title": "This link is no longer valid",
        "invalid_body": "Please use the link in the most recent message we sent you, or contact "
        "us and we will send you a new one.",
        "too_many": "Too many requests. Please wait a minute and try again.",
        "form_expired": "This form has expired. Please open your page again and repeat what you "
        "were doing; nothing was changed.",
        "contact_us": "Questions? Contact us",
        "language": "Language",
        "open_invoices": "Your open invoices",
        "other_open": "Your other open invoices",
        "no_open": "You have no open invoices with us. Thank you.",
        "invoice": "Invoice {invoice_id}",
        "issued_on": "Issue date",
        "due_on": "Due date",
        "amount": "Invoice amount",
        "paid": "Payments received",
        "outstanding": "Outstanding",
        "payments": "Payments",
        "what_next": "What happens next",
        "pay": "Pay {amount}",
        "pay_note": "You will be taken to our payment page.",
        "plan": "Your payment plan",
        "instalment": "Instalment",
        "instalment_status": "Status",
        "status_open": "to pay",
        "status_paid": "paid",
        "status_late": "late",
        "status_missed": "missed",
        "messages": "Messages we sent you",
        "no_messages": "We have not sent you any messages yet.",
        "channel_email": "Email",
        "channel_sms": "Text message",
        "channel_whatsapp": "WhatsApp",
        "next_reminder": "If the invoice is still unpaid, we will send you a reminder by "
        "{channels} on {date}.",
        "next_agent_task": "If the invoice is still unpaid, a member of our team will call "
        "you from {date}.",
        "next_hand_over": "If the invoice is still unpaid, we will pass it to a collection "
        "agency on {date}.",
        "next_none": "We will not send you further reminders for this invoice.",
        "next_disputed": "You told us something is not right with this invoice. We have "
        "stopped the reminders while we look into it, and will get back to you.",
        "next_promised": "You promised to pay by {date}. We will not send reminders until then.",
        "next_arrangement": "You are paying in instalments. We will remind you a few days "
        "before each instalment is due.",
        "next_paused": "Reminders for this invoice are on hold.",
        "next_agent": "A member of our team will contact you about this invoice.",
        "closed_paid": "Paid. Thank you!",
        "closed_cancelled": "This invoice has been cancelled; you do not need to pay it.",
        "closed_written_off": "This invoice is closed; you do not need to pay it.",
        "closed_handed_over": "This invoice has been passed to a collection agency.",
        "and": "and",
    },
    "nl": {
        "title": "Uw facturen",
        "invalid_title": "Deze link is niet meer geldig",
        "invalid_body": "Gebruik de link uit het meest recente bericht dat we u stuurden, of "
        "neem contact met ons op, dan sturen we u een nieuwe.",
        "too_many": "Te veel verzoeken. Wacht een minuut en probeer het opnieuw.",
        "form_expired": "Dit formulier is verlopen. Open uw pagina opnieuw en herhaal wat u "
        "deed; er is niets gewijzigd.",
        "contact_us": "Vragen? Neem contact met ons op",
        "language": "Taal",
        "open_invoices": "Uw openstaande facturen",
        "other_open": "Uw andere openstaande facturen",
        "no_open": "U heeft geen openstaande facturen bij ons. Dank u wel.",
        "invoice": "Factuur {invoice_id}",
        "issued_on": "Factuurdatum",
        "due_on": "Vervaldatum",
        "amount": "Factuurbedrag",
        "paid": "Ontvangen betalingen",
        "outstanding": "Openstaand",
        "payments": "Betalingen",
        "what_next": "Wat er nu gebeurt",
        "pay": "Betaal {amount}",
        "pay_note": "U gaat naar onze betaalpagina.",
        "plan": "Uw betalingsregeling",
        "instalment": "Termijn",
        "instalment_status": "Status",
        "status_open": "te betalen",
        "status_paid": "betaald",
        "status_late": "te laat",
        "status_missed": "gemist",
        "messages": "Berichten die we u stuurden",
        "no_messages": "We hebben u nog geen berichten gestuurd.",
        "channel_email": "E-mail",
        "channel_sms": "Sms",
        "channel_whatsapp": "WhatsApp",
        "next_reminder": "Blijft de factuur onbetaald, dan sturen we u op {date} een "
        "herinnering per {channels}.",
        "next_agent_task": "Blijft de factuur onbetaald, dan belt een van onze medewerkers u "
        "vanaf {date}.",
        "next_hand_over": "Blijft de factuur onbetaald, dan dragen we de vordering op {date} "
        "over aan een incassobureau.",
        "next_none": "We sturen u voor deze factuur geen herinneringen meer.",
        "next_disputed": "U heeft ons laten weten dat er iets niet klopt aan deze factuur. We "
        "hebben de herinneringen stopgezet terwijl we het uitzoeken, en nemen contact met u op.",
        "next_promised": "U heeft toegezegd uiterlijk {date} te betalen. Tot dan sturen we "
        "geen herinneringen.",
        "next_arrangement": "U betaalt in termijnen. We herinneren u een paar dagen voor elke "
        "termijn.",
        "next_paused": "De herinneringen voor deze factuur staan stil.",
        "next_agent": "Een van onze medewerkers neemt contact met u op over deze factuur.",
        "closed_paid": "Betaald. Dank u wel!",
        "closed_cancelled": "Deze factuur is geannuleerd; u hoeft haar niet te betalen.",
        "closed_written_off": "Deze factuur is gesloten; u hoeft haar niet te betalen.",
        "closed_handed_over": "Deze factuur is overgedragen aan een incassobureau.",
        "and": "en",
    },
}
