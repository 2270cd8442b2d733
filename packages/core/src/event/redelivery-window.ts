/**
 * How old an event may be when it is handed to its consumers again (a dead letter's redrive, the outbox's republish):
 * consumers know an event they took by its id for 7 days (automation's firings, the detectors' findings, the
 * operator-events consumer's markers), so one handed back later would act again (reviews 111 and 159). A day of margin
 * for the time between an event's commit and its first delivery.
 */
export const redeliverWithinDays = 6;
