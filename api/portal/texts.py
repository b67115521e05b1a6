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
        "instalment_amount": "Amount",
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
        "notice_done_dispute": "Thank you for telling us. We have stopped the reminders for "
        "this invoice while we look into it, and we will get back to you.",
        "notice_done_promise": "Thank you. We have noted that you will pay by {date}; we will "
        "not send reminders until then.",
        "notice_done_request": "Your request has been sent to our team. We will contact you "
        "soon; until then you will not receive a firm reminder about it.",
        "notice_done_contact": "Thank you. We will use your new contact preferences from now on.",
        "notice_problem_closed": "This invoice is closed, so nothing was changed.",
        "notice_problem_dispute_reason": "Please choose what is wrong with the invoice.",
        "notice_problem_dispute_open": "You have already told us something is wrong with this "
        "invoice; we are looking into it.",
        "notice_problem_promise_date": "Please enter the date on which you will pay.",
        "notice_problem_promise_limit": "We cannot agree {date} here: the date must be between "
        "tomorrow and {latest}. You can send your request to our team instead.",
        "notice_problem_promise_count": "We cannot agree another date online. A member of our "
        "team will contact you to agree a payment plan.",
        "notice_problem_promise_now": "We could not record your promise just now. Please try "
        "again in a minute.",
        "notice_problem_contact_invalid": "That email address or phone number does not look "
        "right (phone numbers start with + and the country code, as in +31612345678). Nothing "
        "was changed.",
        "act": "Something to tell us?",
        "dispute_title": "Something is not right with this invoice",
        "dispute_reason": "What is wrong?",
        "reason_choose": "Choose…",
        "reason_wrong_amount": "The amount is wrong",
        "reason_not_received": "I did not receive what I was invoiced for",
        "reason_already_paid": "I have already paid",
        "reason_quality": "I am not satisfied with what I received",
        "reason_other": "Something else",
        "dispute_details": "Tell us more (optional)",
        "dispute_send": "Send and stop the reminders",
        "promise_title": "I will pay later, on a date I choose",
        "promise_date": "I will pay by",
        "promise_hint": "Any date up to {latest}.",
        "promise_send": "Promise this date",
        "request_send": "Send my request to your team",
        "request_message": "A message for our team (optional)",
        "contact_title": "How we reach you",
        "preferred": "Preferred channel",
        "email": "Email address",
        "phone": "Mobile phone number",
        "no_sms": "No more text messages",
        "no_whatsapp": "No more WhatsApp messages",
        "contact_send": "Save",
        "notice_problem_pay_unavailable": "Paying online is not possible just now. Please try "
        "again later, or pay by bank transfer.",
        "pay_all": "Pay all open invoices: {amount}",
        "pay_waiting_title": "We are processing your payment",
        "pay_waiting": "This page refreshes by itself. It usually takes a few seconds.",
        "pay_paid_title": "Thank you, your payment of {amount} was received",
        "pay_paid": "We have recorded it; you will not receive further reminders for what it paid.",
        "pay_failed_title": "Your payment did not go through",
        "pay_failed": "Nothing was charged. You can try again, or choose another way to pay.",
        "pay_back": "Back to your invoices",
        "part_label": "Or pay another amount",
        "part_hint": "At least {part_min}; it pays your oldest invoice first.",
        "part_send": "Pay this amount",
        "notice_problem_part_invalid": "Please enter an amount such as 150,00.",
        "notice_problem_part_range": "Please enter at least {part_min}, and no more than you "
        "owe in all.",
        "plan_title": "I would like to pay in instalments",
        "plan_count": "Number of monthly instalments",
        "plan_first": "First instalment on",
        "plan_hint": "Up to {plan_max} monthly instalments of at least {plan_min}, the first by "
        "{plan_latest}.",
        "plan_send": "Propose this plan",
        "notice_done_plan": "Thank you: your payment plan of {count} monthly instalments from "
        "{date} is agreed. You will receive it in writing, and a reminder before each instalment.",
        "notice_problem_plan_not_self_service": "We cannot agree a payment plan online. You can "
        "send your proposal to our team instead.",
        "notice_problem_plan_too_many": "We can agree at most {plan_max} instalments here. You "
        "can send your proposal to our team instead.",
        "notice_problem_plan_too_small": "Each instalment must be at least {plan_min} here. You "
        "can send your proposal to our team instead.",
        "notice_problem_plan_first_late": "The first instalment must fall due by {plan_latest} "
        "here. You can send your proposal to our team instead.",
        "notice_problem_plan_refused": "We could not agree this plan just now (for example "
        "while we look into a problem you reported). You can send your proposal to our team.",
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
        "instalment_amount": "Bedrag",
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
        "notice_done_dispute": "Bedankt dat u het ons laat weten. We hebben de herinneringen "
        "voor deze factuur stopgezet terwijl we het uitzoeken, en nemen contact met u op.",
        "notice_done_promise": "Dank u wel. We hebben genoteerd dat u uiterlijk {date} betaalt; "
        "tot dan sturen we geen herinneringen.",
        "notice_done_request": "Uw verzoek is naar ons team gestuurd. We nemen snel contact met "
        "u op; tot dan krijgt u hierover geen dringende herinnering.",
        "notice_done_contact": "Dank u wel. We gebruiken uw nieuwe contactvoorkeuren vanaf nu.",
        "notice_problem_closed": "Deze factuur is gesloten; er is niets gewijzigd.",
        "notice_problem_dispute_reason": "Kies wat er niet klopt aan de factuur.",
        "notice_problem_dispute_open": "U heeft ons al laten weten dat er iets niet klopt aan "
        "deze factuur; we zoeken het uit.",
        "notice_problem_promise_date": "Vul de datum in waarop u betaalt.",
        "notice_problem_promise_limit": "We kunnen {date} hier niet afspreken: de datum moet "
        "tussen morgen en {latest} liggen. U kunt uw verzoek wel naar ons team sturen.",
        "notice_problem_promise_count": "We kunnen online geen nieuwe datum meer afspreken. Een "
        "van onze medewerkers neemt contact met u op om een betalingsregeling af te spreken.",
        "notice_problem_promise_now": "We konden uw toezegging nu niet vastleggen. Probeer het "
        "over een minuut opnieuw.",
        "notice_problem_contact_invalid": "Dat e-mailadres of telefoonnummer lijkt niet te "
        "kloppen (telefoonnummers beginnen met + en de landcode, zoals +31612345678). Er is "
        "niets gewijzigd.",
        "act": "Iets doorgeven?",
        "dispute_title": "Er klopt iets niet aan deze factuur",
        "dispute_reason": "Wat klopt er niet?",
        "reason_choose": "Kies…",
        "reason_wrong_amount": "Het bedrag klopt niet",
        "reason_not_received": "Ik heb niet ontvangen waarvoor de factuur is",
        "reason_already_paid": "Ik heb al betaald",
        "reason_quality": "Ik ben niet tevreden over wat ik ontving",
        "reason_other": "Iets anders",
        "dispute_details": "Vertel ons meer (niet verplicht)",
        "dispute_send": "Versturen en herinneringen stoppen",
        "promise_title": "Ik betaal later, op een datum die ik kies",
        "promise_date": "Ik betaal uiterlijk op",
        "promise_hint": "Elke datum tot en met {latest}.",
        "promise_send": "Deze datum toezeggen",
        "request_send": "Mijn verzoek naar uw team sturen",
        "request_message": "Een bericht voor ons team (niet verplicht)",
        "contact_title": "Hoe we u bereiken",
        "preferred": "Voorkeurskanaal",
        "email": "E-mailadres",
        "phone": "Mobiel nummer",
        "no_sms": "Geen sms meer",
        "no_whatsapp": "Geen WhatsApp-berichten meer",
        "contact_send": "Opslaan",
        "notice_problem_pay_unavailable": "Online betalen lukt nu niet. Probeer het later "
        "opnieuw, of betaal per bankoverschrijving.",
        "pay_all": "Betaal alle openstaande facturen: {amount}",
        "pay_waiting_title": "We verwerken uw betaling",
        "pay_waiting": "Deze pagina ververst vanzelf. Meestal duurt het een paar seconden.",
        "pay_paid_title": "Dank u wel, uw betaling van {amount} is ontvangen",
        "pay_paid": "We hebben haar verwerkt; u krijgt geen herinneringen meer voor wat ze "
        "betaalde.",
        "pay_failed_title": "Uw betaling is niet gelukt",
        "pay_failed": "Er is niets afgeschreven. U kunt het opnieuw proberen, of op een andere "
        "manier betalen.",
        "pay_back": "Terug naar uw facturen",
        "part_label": "Of betaal een ander bedrag",
        "part_hint": "Minstens {part_min}; het betaalt eerst uw oudste factuur.",
        "part_send": "Dit bedrag betalen",
        "notice_problem_part_invalid": "Vul een bedrag in, zoals 150,00.",
        "notice_problem_part_range": "Vul minstens {part_min} in, en niet meer dan u in totaal "
        "verschuldigd bent.",
        "plan_title": "Ik wil in termijnen betalen",
        "plan_count": "Aantal maandelijkse termijnen",
        "plan_first": "Eerste termijn op",
        "plan_hint": "Maximaal {plan_max} maandelijkse termijnen van minstens {plan_min}, de "
        "eerste uiterlijk {plan_latest}.",
        "plan_send": "Deze regeling voorstellen",
        "notice_done_plan": "Dank u wel: uw betalingsregeling van {count} maandelijkse termijnen "
        "vanaf {date} is afgesproken. U ontvangt haar op schrift, en een herinnering voor elke "
        "termijn.",
        "notice_problem_plan_not_self_service": "We kunnen online geen betalingsregeling "
        "afspreken. U kunt uw voorstel wel naar ons team sturen.",
        "notice_problem_plan_too_many": "We kunnen hier hoogstens {plan_max} termijnen afspreken. "
        "U kunt uw voorstel wel naar ons team sturen.",
        "notice_problem_plan_too_small": "Elke termijn moet hier minstens {plan_min} zijn. U kunt "
        "uw voorstel wel naar ons team sturen.",
        "notice_problem_plan_first_late": "De eerste termijn moet hier uiterlijk {plan_latest} "
        "vallen. U kunt uw voorstel wel naar ons team sturen.",
        "notice_problem_plan_refused": "We konden deze regeling nu niet afspreken (bijvoorbeeld "
        "terwijl we een door u gemeld probleem uitzoeken). U kunt uw voorstel wel naar ons team "
        "sturen.",
    },
}
