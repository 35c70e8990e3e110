/**
 * The course writer port: writes one lesson (summary, key points, quiz) from its pages' text.
 * Adapters: `LocalWriter` (extractive, no network) and `OpenAiWriter` (any OpenAI-compatible
 * chat API). Every question cites a page of its lesson.
 */
import type { DocumentStats } from "./text.ts";

export interface LessonSource {
  title: string;
  /** The lesson's text as sentences with their 1-based physical page. */
  passages: { text: string; page: number }[];
}

export interface QuizQuestion {
  question: string;
  choices: string[];
  /** Index into `choices`. */
  answer: number;
  explanation: string;
  page: number;
}

export interface WrittenLesson {
  summary: string;
  keyPoints: string[];
  quiz: QuizQuestion[];
}

export interface CourseWriter {
  readonly name: string;
  /** Writes one lesson; `document` gives the whole course's text for term statistics. */
  lesson(lesson: LessonSource, document: DocumentStats): Promise<WrittenLesson>;
}
